"""``velocitygan study robustness | transfer | benchmark``: argument parsing only."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError
from .options import parse_key_values


def _numbers(text: str | None, kind: type, flag: str) -> list:
    """``"30,20,10"`` -> ``[30.0, 20.0, 10.0]``; empty or None -> ``[]``."""
    if not text:
        return []
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated numbers, e.g. "
                          f"{'0,100,300' if kind is int else '30,20,10'}") from None


def _model_checkpoints(items: tuple[str, ...]) -> dict[str, str]:
    """``MODEL=CKPT`` options -> ``{model: checkpoint}``, one per model."""
    out: dict[str, str] = {}
    for item in items:
        model, sep, ckpt = (part.strip() for part in item.partition("="))
        if not (sep and model and ckpt) or model in out:
            raise ConfigError(f"--source-checkpoint {item!r}: give MODEL=CKPT once per model, "
                              "e.g. velocitygan=pretrained:flatvel-a")
        out[model] = ckpt
    return out


@click.group("study")
def study_group() -> None:
    """Robustness, transfer and equal-budget benchmark studies."""


@study_group.command("robustness")
@click.option("--checkpoint", "-c", "checkpoints", multiple=True, required=True,
              help="Checkpoint to test, or LABEL=PATH (repeatable).")
@click.option("--data", "split", required=True, type=click.Path(path_type=Path),
              help="Labelled split file (DATA<TAB>LABEL) to evaluate on.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Output folder: robustness.csv, robustness.md, evals/.")
@click.option("--dataset", "-d", default=None,
              help="Normalisation override (default: each checkpoint's own).")
@click.option("--snr", default="30,20,10,5,0", show_default=True,
              help="Noise levels: SNR in dB per shot gather ('' = none).")
@click.option("--missing-traces", default="0.1,0.3", show_default=True,
              help="Fractions of receivers zeroed in all shots.")
@click.option("--missing-shots", default="1,2", show_default=True,
              help="Numbers of whole shots zeroed.")
@click.option("--time-shift", default="5,10", show_default=True,
              help="Time shifts in samples (positive = later).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True,
              help="Perturbation seed (sample i draws from (seed, i)).")
@click.option("--batch-size", "-b", type=click.IntRange(1), default=64, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
def robustness_cmd(checkpoints, split, out, dataset, snr, missing_traces, missing_shots,
                   time_shift, seed, batch_size, device) -> None:
    """Evaluate checkpoints on perturbed inputs; tabulate MAE/SSIM per model and perturbation."""
    from ..study import robustness_conditions, run_robustness

    conditions = robustness_conditions(
        snr_db=_numbers(snr, float, "--snr"),
        missing_traces=_numbers(missing_traces, float, "--missing-traces"),
        missing_shots=_numbers(missing_shots, int, "--missing-shots"),
        time_shifts=_numbers(time_shift, int, "--time-shift"), seed=seed)
    run_robustness(checkpoints, split, out, conditions=conditions, dataset=dataset,
                   batch_size=batch_size, device=device, log=click.echo)
    click.echo(f"wrote {out / 'robustness.csv'} and {out / 'robustness.md'}")


@study_group.command("transfer")
@click.option("--source", required=True, help="Source family (flatvel-a ...) or dataset folder.")
@click.option("--target", required=True, help="Target family or dataset folder.")
@click.option("--k", "ks", default="0,100,300", show_default=True,
              help="Target training samples for fine-tuning (0 = none).")
@click.option("--models", default="velocitygan,inversionnet", show_default=True,
              help="Models to study.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Output folder: transfer.csv, transfer.md, data/, runs/, evals/.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="Training TOML or bundled config name (e.g. cpu-demo); flags override it.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Source training epochs.")
@click.option("--finetune-epochs", type=click.IntRange(1), default=None,
              help="Epochs of each fine-tuning / scratch run [source epochs].")
@click.option("--finetune-steps", type=click.IntRange(1), default=None,
              help="Instead: exactly N iterations per fine-tuning / scratch run, whatever K.")
@click.option("--freeze", type=click.Choice(["none", "encoder", "decoder"]), default="none",
              show_default=True, help="Generator part kept fixed while fine-tuning.")
@click.option("--no-scratch", is_flag=True, help="Skip the from-scratch runs on K samples.")
@click.option("--source-checkpoint", "source_checkpoints", multiple=True,
              help="MODEL=CKPT: start MODEL from this checkpoint (or pretrained:NAME) instead of "
                   "training it on SOURCE; repeatable.")
@click.option("--source-samples", type=click.IntRange(1), default=500, show_default=True,
              help="Source training samples to generate.")
@click.option("--val-samples", type=click.IntRange(1), default=100, show_default=True,
              help="Validation samples to generate per family.")
@click.option("--width", type=float, default=None, help="Generator channel multiplier.")
@click.option("--batch-size", type=click.IntRange(1), default=None, help="Training batch.")
@click.option("--workers", type=click.IntRange(0), default=None, help="DataLoader workers.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
def transfer_cmd(source, target, ks, models, out, config_file, epochs, finetune_epochs,
                 finetune_steps, freeze, no_scratch, source_checkpoints, source_samples,
                 val_samples, width, batch_size, workers, seed, device) -> None:
    """Train on SOURCE, test on TARGET before and after fine-tuning on K target samples."""
    from ..study import TransferSettings, run_transfer

    overrides = {k: v for k, v in (("epochs", epochs), ("width", width),
                                   ("batch_size", batch_size), ("workers", workers))
                 if v is not None}
    settings = TransferSettings(
        source=source, target=target, ks=_numbers(ks, int, "--k"),
        models=[m.strip() for m in models.split(",") if m.strip()],
        source_samples=source_samples, val_samples=val_samples,
        config=str(config_file) if config_file else None, overrides=overrides,
        finetune_epochs=finetune_epochs or 0, finetune_steps=finetune_steps or 0,
        freeze=freeze, scratch=not no_scratch, seed=seed, device=device,
        source_checkpoints=_model_checkpoints(source_checkpoints))
    run_transfer(settings, out, log=click.echo)
    click.echo(f"wrote {out / 'transfer.csv'} and {out / 'transfer.md'}")


@study_group.command("benchmark")
@click.option("--family", "-f", required=True, help="Velocity-map family, e.g. flatvel-a.")
@click.option("--budget-min", type=float, required=True,
              help="Wall-clock training budget of every run, in minutes.")
@click.option("--models", default="velocitygan,inversionnet", show_default=True,
              help="Comma-separated: velocitygan, inversionnet.")
@click.option("--seeds", default="0,1", show_default=True, help="Training seeds per model.")
@click.option("--out", "-o", required=True, type=click.Path(path_type=Path),
              help="Study folder (data, test set, runs, tables, figure).")
@click.option("--config", "config_file", default=None,
              help="Training config: bundled name (cpu-2h ...) or TOML file.")
@click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
              help="Another training setting, e.g. --set width=0.5 (repeatable).")
@click.option("--train-samples", type=click.IntRange(10), default=5000, show_default=True,
              help="Training maps to generate (10 % become a validation split).")
@click.option("--test-samples", type=click.IntRange(1), default=500, show_default=True,
              help="Held-out test maps, drawn with their own seed.")
@click.option("--data-seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--test-seed", type=click.IntRange(0), default=1000, show_default=True)
def benchmark_cmd(family, budget_min, models, seeds, out, config_file, set_items, train_samples,
                  test_samples, data_seed, test_seed) -> None:
    """Train each model for the same wall-clock budget on the same data; score on a test set."""
    from ..study.benchmark import BenchmarkSettings, run_benchmark

    settings = BenchmarkSettings(
        family=family, budget_min=budget_min,
        models=[m.strip() for m in models.split(",") if m.strip()],
        seeds=_numbers(seeds, int, "--seeds"), config=config_file,
        overrides=parse_key_values(set_items, "--set", "width=0.5", bare_strings=True),
        train_samples=train_samples, test_samples=test_samples, data_seed=data_seed,
        test_seed=test_seed)
    run_benchmark(settings, out, log=click.echo)
    click.echo(f"wrote {out / 'benchmark.md'}, {out / 'benchmark.csv'} and "
               f"{out / 'benchmark.png'}")
