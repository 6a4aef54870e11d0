"""``velocitygan train``: parse flags into a training configuration and run it."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConfigError
from .options import parse_key_values

DATASET_HELP = "Normalisation: benchmark name (flatvel-a ...), a dataset.json card, FILE.toml#NAME."
TRISTATE = click.Choice(["auto", "true", "false"])



@click.command("train")
@click.option("--model", type=click.Choice(["velocitygan", "inversionnet"]), default=None,
              help="Network to train [default: velocitygan].")
@click.option("--train", "train_split", type=click.Path(path_type=Path), default=None,
              help="Training split file (DATA<TAB>LABEL lines).")
@click.option("--val", "val_split", type=click.Path(path_type=Path), default=None,
              help="Validation split file.")
@click.option("--dataset", "-d", default=None, help=DATASET_HELP + " [default: flatvel-a]")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Run folder: config.toml, metrics.csv, best.pt, last.pt, tensorboard/.")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="TOML file of settings (e.g. configs/cpu-demo.toml); flags override it.")
@click.option("--epochs", type=int, default=None, help="Epochs [default: 500 / 120].")
@click.option("--batch-size", type=int, default=None,
              help="Global batch, split across processes [default: 64 / 256].")
@click.option("--resume", is_flag=True, help="Continue RUN from its last.pt and config.toml.")
@click.option("--seed", type=int, default=None, help="Seed of init, data order and GP [0].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="Device [default: auto].")
@click.option("--width", type=float, default=None, help="Generator channel multiplier [1.0].")
@click.option("--lr", type=float, default=None, help="Generator learning rate [1e-4].")
@click.option("--n-critic", type=int, default=None,
              help="Generator step every N-th iteration (VelocityGAN) [5].")
@click.option("--workers", type=int, default=None, help="DataLoader workers per process [2].")
@click.option("--max-steps", type=int, default=None, help="Stop after N iterations [no limit].")
@click.option("--checkpoint-every-steps", type=int, default=None,
              help="Also write last.pt every N iterations [only per epoch].")
@click.option("--init-from", type=click.Path(path_type=Path), default=None,
              help="Start the generator from this checkpoint (fine-tuning).")
@click.option("--freeze", type=click.Choice(["none", "encoder", "decoder"]), default=None,
              help="Keep this generator part fixed while fine-tuning [none].")
@click.option("--unfrozen-lr", type=float, default=None,
              help="Learning rate of the unfrozen generator part when freezing [lr].")
@click.option("--bf16", type=TRISTATE, default=None, help="bfloat16 autocast [auto].")
@click.option("--channels-last", type=TRISTATE, default=None, help="channels_last [auto].")
@click.option("--compile", "compile_", type=TRISTATE, default=None,
              help="torch.compile the generator [auto = off].")
@click.option("--nan-policy", type=click.Choice(["stop", "skip"]), default=None,
              help="On a NaN/Inf loss: stop, or skip the batch [stop].")
@click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
              help="Any other setting, e.g. --set critic_norm=none (repeatable).")
def train_cmd(out: Path, config_file: Path | None, resume: bool, set_items: tuple[str, ...],
              train_split: Path | None, val_split: Path | None, compile_: str | None,
              **flags) -> None:
    """Train VelocityGAN (InversionNet generator + WGAN-GP critic) or InversionNet.

    Settings: reference defaults < --config FILE.toml < flags. The resolved settings are
    written to RUN/config.toml. Under `torchrun --nproc_per_node K` the same command trains
    with DistributedDataParallel.
    """
    from ..train import load_toml_config, resolve_config, train

    overrides = parse_key_values(set_items, "--set", "n_critic=1", bare_strings=True)
    overrides |= {k: v for k, v in flags.items() if v is not None}
    for key, value in (("train", train_split), ("val", val_split), ("out", out),
                       ("init_from", flags.get("init_from"))):
        if value is not None:
            overrides[key] = str(value)
    if compile_ is not None:
        overrides["compile"] = compile_
    saved = out / "config.toml"
    base = load_toml_config(saved) if resume and saved.is_file() else None
    cfg = resolve_config(base=base, file=config_file, overrides=overrides)
    if not resume:
        for key in ("train", "val"):
            if not getattr(cfg, key):
                raise ConfigError(f"no {key} split given; pass --{key} SPLIT_FILE")
    train(cfg, resume=resume)


def register(cli: click.Group) -> None:
    """Add the ``train`` command to ``cli``."""
    cli.add_command(train_cmd)
