"""``velocitygan fwi`` (physics-driven inversion) and ``velocitygan invert`` (network + FWI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ..errors import ConfigError
from .generate import BACKEND_HELP

DATASET_HELP = "Normalisation for the network: benchmark name, dataset.json card, FILE.toml[#NAME]."
STATE_FILE = "fwi_state.pt"


def _fwi_options(func):
    """Options shared by ``fwi`` and ``invert``."""
    opts = [
        click.option("--data", "-i", "data", required=True, type=click.Path(path_type=Path),
                     help="Raw seismic .npy: (N, shots, nt, receivers) or one sample."),
        click.option("--sample", "-s", default="0", show_default=True,
                     help="Samples to invert as one batch: 3, 0,4,7, 0:20 or all."),
        click.option("--true", "true_path", type=click.Path(path_type=Path),
                     help="True velocity .npy (m/s), indexed like --data: MAE in m/s."),
        click.option("--optimizer", type=click.Choice(["adam", "lbfgs"]), default="adam",
                     show_default=True),
        click.option("--lr", type=float, default=None,
                     help="Step size (Adam: fraction of vmax - vmin per iteration, default "
                          "0.005; L-BFGS: 1.0)."),
        click.option("--tv", "tv_weight", type=float, default=0.0, show_default=True,
                     help="Total-variation weight (velocity scaled to [0, 1])."),
        click.option("--freqs", default="5,10,full", show_default=True,
                     help="Low-pass corners (Hz), low to high; 'full' = unfiltered."),
        click.option("--vmin", "vmin_mps", type=float, default=1500.0, show_default=True,
                     help="Lower velocity bound (m/s)."),
        click.option("--vmax", "vmax_mps", type=float, default=4500.0, show_default=True,
                     help="Upper velocity bound (m/s)."),
        click.option("--clip", "grad_clip_quantile", type=float, default=0.98, show_default=True,
                     help="Clip each gradient at this quantile of |g| (1 = off)."),
        click.option("--acquisition", "acq_path", type=click.Path(path_type=Path),
                     help="JSON with the acquisition (e.g. a generated dataset.json); "
                          "default OpenFWI's."),
        click.option("--backend", type=click.Choice(["auto", "deepwave", "torch"]),
                     default="auto", show_default=True, help=BACKEND_HELP),
        click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda."),
        click.option("--no-figures", is_flag=True, help="Skip the PNG figures."),
        click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
                     help="Output folder."),
        click.option("--resume", is_flag=True,
                     help="Continue the interrupted run of this command in --out "
                          "(OUT/fwi_state.pt, saved every 10 iterations and on Ctrl-C)."),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _common(kw: dict):
    """Load data/true/acquisition and check --resume against OUT's state file; return
    (observed, idx, n_in_file, true, acq, fwi kwargs)."""
    from ..data.npyfile import npy_header
    from ..fwi import parse_freqs
    from ..fwi.checks import check_settings
    from ..fwi.inputs import load_acquisition, load_maps, load_observed

    if kw["out"].exists() and not kw["out"].is_dir():
        raise ConfigError(f"--out {kw['out']} is a file; give a folder for the results")
    acq = load_acquisition(kw["acq_path"])
    observed, idx = load_observed(kw["data"], kw["sample"])
    shape = npy_header(Path(kw["data"]).expanduser())[0]
    n_file = shape[0] if len(shape) == 4 else 1
    true = None
    if kw["true_path"] is not None:
        true = load_maps(kw["true_path"], idx, n_file, "true velocity")
    state = kw["out"] / STATE_FILE
    fwi_kw = {"acquisition": acq, "optimizer": kw["optimizer"], "lr": kw["lr"],
              "freqs_hz": parse_freqs(kw["freqs"]), "tv_weight": kw["tv_weight"],
              "grad_clip_quantile": kw["grad_clip_quantile"], "true_velocity_mps": true,
              "backend": kw["backend"], "state_path": state}
    # before any work (invert runs its network first): settings errors come at once
    check_settings(iterations=0, optimizer=kw["optimizer"], lr=kw["lr"],
                   tv_weight=kw["tv_weight"], freqs_hz=fwi_kw["freqs_hz"],
                   vmin_mps=kw["vmin_mps"], vmax_mps=kw["vmax_mps"], dt_s=acq.dt_s,
                   grad_clip_quantile=kw["grad_clip_quantile"], acquisition=acq)
    if state.exists() and not kw["resume"]:
        raise ConfigError(f"{kw['out']} holds an interrupted run ({STATE_FILE}); pass --resume "
                          "to continue it, or choose another --out")
    if kw["resume"] and not state.is_file():
        raise ConfigError(f"{state}: nothing to resume; run without --resume")
    return observed, idx, n_file, true, acq, fwi_kw


@contextmanager
def _keep_state(out: Path) -> Iterator[None]:
    """Say how to continue after Ctrl-C; remove the state file once the outputs exist."""
    try:
        yield
    except KeyboardInterrupt:
        if (out / STATE_FILE).is_file():
            click.echo(f"interrupted: progress saved to {out / STATE_FILE}; continue with the "
                       "same command and --resume", err=True)
        raise
    (out / STATE_FILE).unlink(missing_ok=True)


@click.command("fwi")
@_fwi_options
@click.option("--init", default=None,
              help="Start model: smooth (the true model smoothed; needs --true), linear "
                   "(vmin at the surface to vmax at the bottom) or START.npy in m/s. "
                   "Default: smooth with --true, else linear.")
@click.option("--smooth-sigma", type=float, default=10.0, show_default=True,
              help="Gaussian std of --init smooth, in grid cells.")
@click.option("--iterations", "-n", type=click.IntRange(min=0), default=100, show_default=True)
def fwi_cmd(init, smooth_sigma, iterations, **kw) -> None:
    """Physics-driven FWI of raw seismic data, through the package's forward operator."""
    from ..fwi import run_fwi
    from ..fwi.inputs import load_maps, start_model
    from ..fwi.report import write_fwi_outputs

    observed, idx, n_file, true, acq, fwi_kw = _common(kw)
    init = init or ("smooth" if true is not None else "linear")
    if init in ("smooth", "linear"):
        start = start_model(init, len(idx), acq, true_mps=true, sigma_cells=smooth_sigma,
                            vmin_mps=kw["vmin_mps"], vmax_mps=kw["vmax_mps"])  # fmt: skip
    else:
        start = load_maps(init, idx, n_file, "start model")
    click.echo(f"fwi: {len(idx)} sample(s), {iterations} iterations, start {init}", err=True)
    with _keep_state(kw["out"]):
        result = run_fwi(observed, start, iterations=iterations, vmin_mps=kw["vmin_mps"],
                         vmax_mps=kw["vmax_mps"], device=kw["device"], **fwi_kw)  # fmt: skip
        s = write_fwi_outputs(result, kw["out"], dx_m=acq.dx_m, true_mps=true, sample_ids=idx,
                              figures=not kw["no_figures"])  # fmt: skip
    _echo_summary(s, kw["out"] / "velocity.npy")


def _echo_summary(s: dict, path: Path) -> None:
    line = f"misfit {s['mean_start_misfit']:.4f} -> {s['mean_final_misfit']:.4f}"
    if "final_mae_mps" in s:
        line += f", MAE {s['start_mae_mps']:.1f} -> {s['final_mae_mps']:.1f} m/s"
    click.echo(f"{line}, {s['wall_time_s']:.1f} s; wrote {path}")


@click.command("invert")
@_fwi_options
@click.option("--checkpoint", "-c", required=True, type=click.Path(path_type=Path),
              help="Trained generator checkpoint (velocitygan, OpenFWI reference or "
                   "pretrained:NAME).")
@click.option("--dataset", "-d", default=None, help=DATASET_HELP)
@click.option("--refine", "-n", type=click.IntRange(min=0), default=50, show_default=True,
              help="FWI iterations after the network prediction (0: prediction only).")
def invert_cmd(checkpoint, dataset, refine, **kw) -> None:
    """Hybrid inversion: network prediction refined by FWI; writes pred.npy and refined.npy."""
    import numpy as np

    from ..fwi import run_hybrid
    from ..fwi.report import write_fwi_outputs
    from ..io import save_npy

    observed, idx, _, true, acq, fwi_kw = _common(kw)
    with _keep_state(kw["out"]):
        res = run_hybrid(checkpoint, observed, refine=refine, dataset=dataset,
                         device=kw["device"], vmin_mps=kw["vmin_mps"], vmax_mps=kw["vmax_mps"],
                         log=lambda m: click.echo(m, err=True), **fwi_kw)  # fmt: skip
        save_npy(kw["out"] / "pred.npy", res.pred_mps)
        s = write_fwi_outputs(res.fwi, kw["out"], name="refined", dx_m=acq.dx_m, true_mps=true,
                              sample_ids=idx, figures=not kw["no_figures"])  # fmt: skip
    if true is not None:
        mae = float(np.abs(res.pred_mps - true.reshape(res.pred_mps.shape)).mean())
        click.echo(f"network MAE {mae:.1f} m/s ({res.predict_time_s:.2f} s)")
    _echo_summary(s, kw["out"] / "refined.npy")
