"""The temporally blocked CUDA recipe kernel: samples/s per tile configuration, checked first.

Usage (on a GPU; one sample = 5 shots x 1000 steps x 70 receivers on the 310 x 310 padded grid):
    PYTHONPATH=src python bench/bench_kernel.py --batch 1024 --baseline --out k.md
    PYTHONPATH=src python bench/bench_kernel.py --emulate     # CPU smoke run of this script

Every configuration is first compared with the eager PyTorch recipe on a few models (relative
L2 over all traces), then timed at ``--batch`` (median of ``--repeats`` calls after a warm-up
that includes the NVRTC compilation). ``--baseline`` also times the ``torch.compile`` recipe
(``forward_model(compile_mode="default")``) at the same batch, on the same card, in this run.
``--emulate`` runs the same code on the CPU through the tests' C++ emulation of CUDA on a small
grid with a handful of time steps: it checks the script, it measures nothing.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from velocitygan.errors import VelocityGANError
from velocitygan.io import write_text
from velocitygan.physics import Acquisition, forward_model, ricker
from velocitygan.physics.cuda_kernel import TileConfig, simulate_tiled
from velocitygan.physics.torch_backend import simulate_torch

sys.path.insert(0, str(Path(__file__).parent))
from bench_physics import layered_models  # noqa: E402

# a spread of shapes: square and wide tiles, 4-8 steps, one or two buffers, 1-2 blocks per SM;
# 62 and 104 x 62 cover the 310-cell grid with almost no waste
DEFAULT_TILES = ("48x48x4x16,48x48x4x8,48x48x4x8x2x2,40x40x6x16,32x32x8x16,56x56x4x8x1,"
                 "72x72x6x12x1,64x64x8x12x1,62x62x4x13x1,62x62x4x13x1x2,104x62x4x13x1,"
                 "96x32x4x16,64x24x4x8")


# a tiling counts as correct for --best below this relative L2 from eager and torch.compile over
# whole records (the load-time self-check asks 1e-4 after 120 steps; rounding grows with steps)
BEST_TOLERANCE = 1e-3


def parse_tiles(text: str) -> list[TileConfig]:
    """Comma list of :meth:`TileConfig.parse` specs -> checked tile configurations."""
    return [TileConfig.parse(item) for item in text.split(",")]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: torch.device, repeats: int) -> tuple[float, float, torch.Tensor]:
    """(warm-up seconds, median seconds of ``repeats`` calls, last output)."""
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    warm = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return warm, sorted(times)[len(times) // 2], out


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=1024, help="models per call")
    ap.add_argument("--tiles", default=DEFAULT_TILES,
                    help="comma list of TXxTZxSTEPSxSEG[xBUFFERS[xMINBLOCKS]]")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--check-models", type=int, default=8, help="models compared with eager")
    ap.add_argument("--baseline", action="store_true", help="also time the torch.compile recipe")
    ap.add_argument("--emulate", action="store_true", help="CPU smoke run (C++ emulation)")
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    ap.add_argument("--best", default=None, help="write the fastest correct tiling here (for "
                    "$VELOCITYGAN_CUDA_TILE); nothing is written when none beats --baseline")
    args = ap.parse_args(argv)
    try:
        tiles = parse_tiles(args.tiles)
    except VelocityGANError as exc:
        ap.error(f"--tiles: {exc}")
    if args.emulate:
        sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
        from test_cuda_kernel import emulated_launcher

        # a 40 x 40 padded grid and 6 steps: one block per shot, seconds on the CPU
        device = torch.device("cpu")
        acq = Acquisition(nz=24, nx=24, nt=6, pad_cells=8, src_x=(0, 12, 23),
                          rec_x=tuple(range(24)))
        args.batch, args.check_models, args.repeats = 1, 1, 1
        tiles, args.baseline = tiles[:1], False
        work = Path(tempfile.mkdtemp(prefix="vgan-emu-"))
        launchers = {cfg: emulated_launcher(cfg, work) for cfg in tiles}
    elif not torch.cuda.is_available():
        print("error: no CUDA device is visible (use --emulate for a CPU smoke run)",
              file=sys.stderr)
        return 2
    else:
        device, acq, launchers = torch.device("cuda"), Acquisition(), {}
    models = torch.from_numpy(layered_models(args.batch, acq)).to(device)
    wavelet = torch.from_numpy(ricker(acq.peak_freq_hz, acq.dt_s, acq.nt)).to(device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (emulated CUDA)"
    head = (f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores; "
            f"device {name}; torch {torch.__version__}; batch {args.batch}; one sample = "
            f"{acq.n_shots} shots x {acq.nt} steps on {acq.nz + 2 * acq.pad_cells}^2 cells")
    print(head, flush=True)
    with torch.no_grad():
        few = models[: args.check_models]
        reference = simulate_torch(few, acq, wavelet)
        lines = [head, "", "| method | tile (x, z, steps, rows/thread, buffers, min blocks) "
                 "| threads | relL2 vs eager | warm-up s | s/call | samples/s | peak GPU memory |",
                 "|---|---|---|---|---|---|---|---|"]
        base_out, base_speed, best = None, 0.0, None
        if args.baseline:
            def compiled() -> torch.Tensor:
                return forward_model(models, acq, backend="torch", compile_mode="default")
            torch.cuda.reset_peak_memory_stats()
            warm, sec, base_out = timed(compiled, device, args.repeats)
            err = rel_l2(base_out[: args.check_models], reference)
            mem = torch.cuda.max_memory_allocated() / 2**30
            base_speed = args.batch / sec
            lines.append(f"| torch.compile recipe | - | - | {err:.1e} | {warm:.1f} | {sec:.3f} | "
                         f"{base_speed:.1f} | {mem:.1f} GiB |")
            print(lines[-1], flush=True)
        for cfg in tiles:
            launcher = launchers.get(cfg)
            label = (f"{cfg.tile_x}, {cfg.tile_z}, {cfg.steps}, {cfg.rows_per_thread}, "
                     f"{cfg.buffers}, {cfg.min_blocks}")
            try:
                check = simulate_tiled(few, acq, wavelet, config=cfg, launcher=launcher)
                err = rel_l2(check, reference)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                warm, sec, out = timed(
                    lambda c=cfg, la=launcher: simulate_tiled(models, acq, wavelet, config=c,
                                                              launcher=la),
                    device, args.repeats)
            except (VelocityGANError, RuntimeError) as exc:  # one bad configuration, not all
                lines.append(f"| kernel | {label} | {cfg.threads} | failed: "
                             f"{type(exc).__name__}: {str(exc)[:80]} | | | | |")
                print(lines[-1], flush=True)
                continue
            if base_out is not None:
                err = max(err, rel_l2(out, base_out))
            mem = (f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
                   if device.type == "cuda" else "-")
            lines.append(f"| kernel | {label} | {cfg.threads} | {err:.1e} | {warm:.1f} | "
                         f"{sec:.3f} | {args.batch / sec:.1f} | {mem} |")
            print(lines[-1], flush=True)
            if err < BEST_TOLERANCE and args.batch / sec > max(base_speed, best[1] if best else 0):
                best = (cfg, args.batch / sec)
                if args.best:  # written as soon as known: a time limit may stop the sweep
                    write_text(args.best, cfg.spec + "\n")
    if best:
        print(f"fastest correct tiling: {best[0].spec} ({best[1]:.1f} samples/s)", flush=True)
    if args.out:
        write_text(args.out, "# Tiled CUDA recipe kernel\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
