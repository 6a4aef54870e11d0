"""What the CUDA compiler makes of each tiling of the recipe kernel, without a GPU.

Usage (needs ``nvcc``; no GPU):
    PYTHONPATH=src python bench/kernel_resources.py --arch sm_90 --out res.md

For every tiling (default: the sweep of ``bench_kernel.py``), ``nvcc -cubin --resource-usage``
compiles ``recipe_kernel.cu`` for ``--arch`` and reports registers per thread, spills and static
shared memory; the table adds the resident blocks per multiprocessor those allow (the occupancy
limit, from the architecture's published register file, thread and shared-memory limits) and
two static properties of the tiling: the halo overhead (cells computed per output cell) and the
global-memory bytes per output cell-step (reads of both fields and the velocity over the
region, writes of both fields over the tile, per launch of ``steps`` steps), and the samples/s
at which that traffic alone would saturate ``--bandwidth`` (one sample = 4.8e8 cell-steps; an
upper bound: it ignores shared-memory, arithmetic and latency limits and the partial tiles
at the grid edge). These are compile-time facts and arithmetic, not speeds:
``bench_kernel.py`` measures on a card.
"""

from __future__ import annotations

import argparse
import math
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from velocitygan.errors import VelocityGANError
from velocitygan.io import write_text
from velocitygan.physics.cuda_kernel import TileConfig, kernel_source

sys.path.insert(0, str(Path(__file__).parent))
from bench_kernel import DEFAULT_TILES, parse_tiles  # noqa: E402

CELL_STEPS = 5 * 1000 * 310 * 310  # one OpenFWI sample: shots x steps x padded cells


@dataclass(frozen=True)
class Arch:
    """Per-multiprocessor limits of a CUDA architecture (NVIDIA's occupancy tables)."""

    registers: int = 65536
    threads: int = 2048
    blocks: int = 32
    shared_bytes: int = 233472  # 228 KiB on sm_90; 1 KiB of it is reserved per block
    reserved_shared: int = 1024


ARCHS = {"sm_80": Arch(shared_bytes=167936), "sm_86": Arch(threads=1536, blocks=16,
         shared_bytes=102400), "sm_89": Arch(threads=1536, blocks=24, shared_bytes=102400),
         "sm_90": Arch()}


@dataclass(frozen=True)
class Resources:
    registers: int
    spill_stores: int
    spill_loads: int
    shared_bytes: int


def compile_resources(cfg: TileConfig, arch: str, workdir: Path) -> Resources:
    """Compile one tiling with nvcc for ``arch``; what ptxas reports for the kernel."""
    source = workdir / "recipe_kernel.cu"
    source.write_text(kernel_source(cfg))
    done = subprocess.run(
        ["nvcc", f"-arch={arch}", "-cubin", "--resource-usage", "-o", str(workdir / "k.cubin"),
         str(source)], capture_output=True, text=True)
    text = done.stdout + done.stderr
    if done.returncode != 0:
        raise VelocityGANError(f"nvcc failed for {cfg.spec}: {text.strip()[-400:]}")
    regs = re.search(r"Used (\d+) registers", text)
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", text)
    smem = re.search(r"(\d+) bytes smem", text)
    if not (regs and spills and smem):
        raise VelocityGANError(f"unexpected ptxas report for {cfg.spec}: {text.strip()[-400:]}")
    return Resources(int(regs.group(1)), int(spills.group(1)), int(spills.group(2)),
                     int(smem.group(1)))


def blocks_per_sm(cfg: TileConfig, res: Resources, arch: Arch) -> tuple[int, str]:
    """Resident blocks per multiprocessor and the resource that limits them."""
    warps = math.ceil(cfg.threads / 32)
    regs_per_warp = math.ceil(res.registers * 32 / 256) * 256  # allocated per warp in 256s
    limits = {
        "registers": arch.registers // (regs_per_warp * warps),
        "threads": arch.threads // (warps * 32),
        "blocks": arch.blocks,
        "shared": arch.shared_bytes // (res.shared_bytes + arch.reserved_shared),
    }
    name = min(limits, key=limits.get)
    return limits[name], name


def traffic(cfg: TileConfig) -> tuple[float, float]:
    """(cells computed per output cell, global bytes per output cell-step), float32 fields."""
    height, width = cfg.region
    region, tile = height * width, cfg.tile_x * cfg.tile_z
    return region / tile, (12 * region + 8 * tile) / (tile * cfg.steps)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="sm_90", choices=sorted(ARCHS))
    ap.add_argument("--tiles", default=DEFAULT_TILES,
                    help="comma list of TXxTZxSTEPSxSEG[xBUFFERS[xMINBLOCKS]]")
    ap.add_argument("--bandwidth", type=float, default=3.0e12,
                    help="global memory bandwidth for the bound, bytes/s (default: 3.0e12, a "
                    "device-to-device copy on an H100 of this workplace)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    if shutil.which("nvcc") is None:
        print("error: nvcc is not on PATH (install the CUDA toolkit's compiler)", file=sys.stderr)
        return 2
    try:
        tiles = parse_tiles(args.tiles)
    except VelocityGANError as exc:
        ap.error(f"--tiles: {exc}")
    version = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout
    release = re.search(r"release ([\d.]+)", version)
    head = (f"nvcc {release.group(1) if release else '?'}, --arch {args.arch}, bound at "
            f"{args.bandwidth:.2e} B/s; static: nothing here ran on a GPU")
    print(head, flush=True)
    lines = [head, "", "| tile (x, z, steps, rows/thread, buffers, min blocks) | threads | "
             "registers | spill bytes (st/ld) | shared bytes | blocks/SM (limit) | warps/SM | "
             "cells per output cell | global B per output cell-step | traffic bound (samples/s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory(prefix="vgan-nvcc-") as work:
        for cfg in tiles:
            try:
                res = compile_resources(cfg, args.arch, Path(work))
            except VelocityGANError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            blocks, limit = blocks_per_sm(cfg, res, ARCHS[args.arch])
            redundancy, nbytes = traffic(cfg)
            label = ", ".join(str(v) for v in (cfg.tile_x, cfg.tile_z, cfg.steps,
                                               cfg.rows_per_thread, cfg.buffers, cfg.min_blocks))
            lines.append(f"| {label} | {cfg.threads} | {res.registers} | {res.spill_stores}/"
                         f"{res.spill_loads} | {res.shared_bytes} | {blocks} ({limit}) | "
                         f"{blocks * math.ceil(cfg.threads / 32)} | {redundancy:.2f} | "
                         f"{nbytes:.2f} | {args.bandwidth / nbytes / CELL_STEPS:.0f} |")
            print(lines[-1], flush=True)
    if args.out:
        write_text(args.out, "# Recipe kernel: compiler resources per tiling\n\n"
                   + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
