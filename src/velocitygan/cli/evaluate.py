"""``velocitygan evaluate | predict | plot | report | export``: argument parsing only."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import click

from ..data.npyfile import open_npy

DATASET_HELP = (
    "Normalisation: benchmark name (flatvel-a ...), dataset.json card or FILE.toml[#NAME]; "
    "default: the one stored in the checkpoint."
)
CKPT = click.option(
    "--checkpoint", "-c", required=True, type=click.Path(path_type=Path),
    help="velocitygan checkpoint, OpenFWI reference-code checkpoint, or pretrained:NAME "
         "(bundled weights: velocitygan pretrained).",
)  # fmt: skip
DATASET = click.option("--dataset", "-d", default=None, help=DATASET_HELP)
BATCH = click.option("--batch-size", "-b", default=64, show_default=True, type=click.IntRange(1))
DEVICE = click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Library warnings (e.g. normalisation mismatch) as one ``warning: ...`` line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, UserWarning):
                    click.echo(f"warning: {w.message}", err=True)


def _perturbation_options(f):
    """Perturbations of the raw seismic input (robustness studies); all off by default."""
    opts = [
        click.option("--noise-snr", type=float, default=None,
                     help="Add Gaussian noise at this SNR (dB, per shot gather)."),
        click.option("--missing-traces", type=click.FloatRange(0, 1), default=0.0,
                     help="Fraction of receivers zeroed in every shot."),
        click.option("--missing-shots", type=click.IntRange(0), default=0,
                     help="Number of whole shots zeroed per sample."),
        click.option("--time-shift", type=int, default=0,
                     help="Shift every trace by this many time samples (positive = later)."),
        click.option("--perturb-seed", type=click.IntRange(0), default=0, show_default=True,
                     help="Seed of the perturbations (sample i draws from (seed, i))."),
    ]  # fmt: skip
    for opt in reversed(opts):
        f = opt(f)
    return f


def _raw_transform(noise_snr, missing_traces, missing_shots, time_shift, perturb_seed):
    """``(raw_transform or None, metrics.json extras)`` from the perturbation options."""
    from ..perturb import RawPerturbation

    pert = RawPerturbation(noise_snr, missing_traces, missing_shots, time_shift, perturb_seed)
    if pert.is_identity:
        return None, {}
    return pert, {"perturbation": pert.to_dict(), "perturbation_label": pert.label}


@click.command("evaluate")
@CKPT
@click.option("--data", "split", required=True, type=click.Path(path_type=Path),
              help="Split file with DATA<TAB>LABEL lines.")  # fmt: skip
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path), help="Output folder.")
@DATASET
@BATCH
@DEVICE
@click.option("--physics", is_flag=True, help="Also report the data misfit (forward modelling).")
@click.option("--no-figures", is_flag=True, help="Skip the best/median/worst figures.")
@click.option("--save-predictions", is_flag=True, help="Also write predictions.npy (m/s).")
@_perturbation_options
def evaluate_cmd(checkpoint, split, out, dataset, batch_size, device, physics, no_figures,
                 save_predictions, **perturbation) -> None:  # fmt: skip
    """Benchmark metrics of a checkpoint on a labelled split (metrics.json, per_sample.csv)."""
    from ..evaluate import evaluate_checkpoint

    raw_transform, extra = _raw_transform(**perturbation)
    with _warnings_as_lines():
        m = evaluate_checkpoint(
            checkpoint, split, out, dataset=dataset, batch_size=batch_size, device=device,
            raw_transform=raw_transform, physics=physics, figures=not no_figures,
            save_predictions=save_predictions, extra=extra,
        )  # fmt: skip
    click.echo(f"samples   {m['samples']}  ({m['samples_per_s']:.1f} samples/s on {m['device']})")
    click.echo(f"MAE       {m['mae']:.4f}  ({m['mae_mps']:.1f} m/s)")
    click.echo(f"RMSE      {m['rmse']:.4f}  ({m['rmse_mps']:.1f} m/s)")
    click.echo(f"SSIM      {m['ssim']:.4f}  (OpenFWI convention)")
    if "data_misfit" in m:
        click.echo(f"misfit    {m['data_misfit']:.4f}  (relative L2, seismic)")
    click.echo(f"wrote     {out / 'metrics.json'}, {out / 'per_sample.csv'}")


@click.command("predict")
@CKPT
@click.option("--input", "-i", "source", required=True, type=click.Path(path_type=Path),
              help="Raw seismic: X.npy (5,1000,70) or (N,5,1000,70), a split file, or .sgy/.segy.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Output .npy: velocities in m/s, (N, 1, 70, 70) float32.")  # fmt: skip
@DATASET
@BATCH
@DEVICE
@click.option("--shot-key", type=click.Choice(["field_record", "source_x"]),
              default="field_record", show_default=True,
              help="SEG-Y input: trace header that groups traces into shots.")
def predict_cmd(checkpoint, source, out, dataset, batch_size, device, shot_key) -> None:
    """Predict velocity maps (m/s) from raw seismic records."""
    from ..predict import predict

    v = predict(checkpoint, source, out, dataset=dataset, batch_size=batch_size, device=device,
                log=lambda m: click.echo(m, err=True), shot_key=shot_key)  # fmt: skip
    click.echo(f"wrote {out}: {v.shape[0]} velocity map(s), {v.min():.0f} .. {v.max():.0f} m/s")


@click.group("plot")
def plot_group() -> None:
    """Figures: velocity maps, prediction/truth/error comparisons, shot gathers."""


def _out(out: Path | None, src: Path, suffix: str) -> Path:
    return out if out is not None else src.with_name(f"{src.stem}{suffix}.png")


OUT_FIG = click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
                       help="Figure file (.png, .pdf, .svg); default: next to the input.")
INDEX = click.option("--index", "-n", "indices", type=click.IntRange(0), multiple=True,
                     help="Sample(s) to draw (repeatable; default: the first).")
DX = click.option("--dx", "dx_m", type=float, default=10.0, show_default=True,
                  help="Grid / receiver spacing in metres.")  # fmt: skip


@plot_group.command("velocity")
@click.argument("velocity", type=click.Path(path_type=Path))
@OUT_FIG
@INDEX
@DX
def plot_velocity(velocity, out, indices, dx_m) -> None:
    """Velocity map(s) in m/s from VELOCITY.npy."""
    from ..plot import save_figure, velocity_figure

    fig = velocity_figure(open_npy(velocity), dx_m=dx_m, indices=list(indices) or None)
    click.echo(f"wrote {save_figure(fig, _out(out, velocity, ''))}")


@plot_group.command("compare")
@click.option("--pred", required=True, type=click.Path(path_type=Path), help="Predicted m/s.")
@click.option("--true", "true_", required=True, type=click.Path(path_type=Path), help="True m/s.")
@OUT_FIG
@click.option("--index", "-n", "index", type=click.IntRange(0), default=0, show_default=True)
@DX
def plot_compare(pred, true_, out, index, dx_m) -> None:
    """Prediction | truth | error panels for one sample."""
    from ..errors import DataError
    from ..plot import as_maps, comparison_figure, save_figure

    p, t = as_maps(open_npy(pred), str(pred)), as_maps(open_npy(true_), str(true_))
    if index >= min(len(p), len(t)):
        raise DataError(f"sample {index} out of range ({pred}: {len(p)}, {true_}: {len(t)})")
    mae = float(abs(p[index] - t[index]).mean())
    fig = comparison_figure(p[index], t[index], dx_m=dx_m,
                            title=f"sample {index}   MAE {mae:.1f} m/s")  # fmt: skip
    click.echo(f"wrote {save_figure(fig, _out(out, pred, f'_compare{index}'))}")


@plot_group.command("seismic")
@click.argument("data", type=click.Path(path_type=Path))
@OUT_FIG
@click.option("--index", "-n", "index", type=click.IntRange(0), default=0, show_default=True)
@click.option("--dt-ms", type=float, default=1.0, show_default=True, help="Sample interval (ms).")
@DX
@click.option("--clip", "clip_pct", type=click.FloatRange(0, 100, min_open=True), default=98.0,
              show_default=True, help="Clip at this percentile of |amplitude|.")  # fmt: skip
def plot_seismic(data, out, index, dt_ms, dx_m, clip_pct) -> None:
    """Shot gathers of one sample of DATA.npy (grey, time in ms, offset in m)."""
    from ..plot import save_figure, seismic_figure

    fig = seismic_figure(open_npy(data), dt_s=dt_ms / 1000, dx_m=dx_m, index=index,
                         clip_percentile=clip_pct)  # fmt: skip
    click.echo(f"wrote {save_figure(fig, _out(out, data, f'_shots{index}'))}")


@click.command("report")
@click.argument("run", type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="HTML file (default RUN/report.html).")
@click.option("--eval", "eval_dir", type=click.Path(path_type=Path), default=None,
              help="Evaluation folder with metrics.json (default RUN/eval if present).")
def report_cmd(run, out, eval_dir) -> None:
    """Self-contained HTML report of a training run: curves, metrics, samples, config."""
    from ..report import write_report

    click.echo(f"wrote {write_report(run, out=out, eval_dir=eval_dir)}")


@click.command("export")
@CKPT
@click.option("--onnx", "onnx_path", required=True, type=click.Path(path_type=Path),
              help="Output .onnx file.")
@DATASET
@click.option("--normalized", is_flag=True,
              help="Export the bare network (normalised in/out) instead of raw seismic -> m/s.")
@click.option("--opset", type=click.IntRange(13), default=17, show_default=True)
def export_cmd(checkpoint, onnx_path, dataset, normalized, opset) -> None:
    """Export the generator to ONNX and check it against PyTorch in onnxruntime."""
    from ..export import export_onnx

    with _warnings_as_lines():
        r = export_onnx(checkpoint, onnx_path, dataset=dataset, physical_units=not normalized,
                        opset=opset)  # fmt: skip
    click.echo(f"wrote {onnx_path} ({r['units']}); onnxruntime vs PyTorch max |diff| "
               f"{r['max_abs_diff']:.2e} {r['diff_units']}")  # fmt: skip


@click.command("pretrained")
def pretrained_cmd() -> None:
    """List the bundled pretrained models (use one as --checkpoint pretrained:NAME)."""
    from ..pretrained import PREFIX, list_pretrained

    cards = list_pretrained()
    if not cards:
        click.echo("no pretrained models are bundled with this installation")
    for card in cards:
        test = card["test"]
        click.echo(f"{PREFIX}{card['name']}: {card['model']} (width {card['width']}) on "
                   f"{card['family']}-like data; test MAE {test['mae_mps']:.1f} m/s, RMSE "
                   f"{test['rmse_mps']:.1f} m/s, SSIM {test['ssim']:.3f} on {test['samples']} "
                   f"held-out maps; {card['date']}, velocitygan {card['velocitygan_version']}")
        click.echo(f"    remake: {card['remake']}")
