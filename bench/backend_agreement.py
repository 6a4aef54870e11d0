"""How closely the deepwave backend reproduces OpenFWI's recipe (the torch backend), per family.

For each family, a few generated maps are simulated with both backends; the table gives the
relative L2 difference of the whole record and of its late part (after ``--late-ms``), and
deepwave's speed per sample on one thread. With ``--unbounded`` a third simulation with a
260-cell sponge (no boundary echo reaches the receivers within 1 s) shows which of the two
carries the boundary's echo.

Usage:
    flock /tmp/vgan-cpu.lock env PYTHONPATH=src python bench/backend_agreement.py \
        --out bench/results/backend_agreement.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from velocitygan.physics import Acquisition, forward_model
from velocitygan.physics.deepwave_backend import DEEPWAVE_PML_CELLS
from velocitygan.synth.families import FAMILIES, make_velocity_maps


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest per-sample ``||a - b|| / ||b||`` over the batch."""
    return float(((a - b).flatten(1).norm(dim=1) / b.flatten(1).norm(dim=1)).max())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=2, help="maps per family")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--late-ms", type=int, default=500)
    ap.add_argument("--unbounded", action="store_true",
                    help="also compare both with a 260-cell-sponge simulation (slow)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    head = (f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, 1 thread; "
            f"torch {torch.__version__}; deepwave PML {DEEPWAVE_PML_CELLS} cells; "
            f"{args.samples} maps per family (seed {args.seed}); max over the maps")
    cols = "| family | edge v (m/s) | deepwave vs recipe | same, t >= {} ms | deepwave s/sample |"
    lines = [head, "", cols.format(args.late_ms), "|---|---|---|---|---|"]
    if args.unbounded:
        lines[2] += " recipe vs unbounded | deepwave vs unbounded |"
        lines[3] += "---|---|"
    print(head, flush=True)
    late = args.late_ms
    for fam in FAMILIES:
        v = torch.from_numpy(make_velocity_maps(fam, args.samples, args.seed))
        recipe = forward_model(v, backend="torch")
        t0 = time.perf_counter()
        dw = forward_model(v, backend="deepwave")
        sec = (time.perf_counter() - t0) / len(v)
        edge = torch.cat([v[:, :, 0], v[:, :, -1], v[:, -1, :]], dim=1)
        row = (f"| {fam} | {edge.min():.0f}-{edge.max():.0f} | {rel_l2(dw, recipe):.4f} | "
               f"{rel_l2(dw[..., late:, :], recipe[..., late:, :]):.3f} | {sec:.3f} |")
        if args.unbounded:
            big = forward_model(v, Acquisition(pad_cells=260), backend="torch")
            row += f" {rel_l2(recipe, big):.4f} | {rel_l2(dw, big):.4f} |"
        lines.append(row)
        print(row, flush=True)
    if args.out:
        from velocitygan.io import write_text

        write_text(args.out, "# deepwave backend vs OpenFWI's recipe\n\n" + "\n".join(lines)
                   + "\n")


if __name__ == "__main__":
    main()
