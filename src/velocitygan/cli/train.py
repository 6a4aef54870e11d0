"""``velocitygan train``: parse flags into a training configuration and run it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from ..errors import ConfigError
from ..train.config import CHOICES, FIELDS, bundled_configs, model_defaults
from .options import parse_key_values

# The settings that have their own flag (--batch-size for batch_size); the others go by --set.
FLAGS = ("model", "train", "val", "dataset", "out", "epochs", "batch_size", "seed", "device",
         "width", "lr", "n_critic", "workers", "max_steps", "checkpoint_every_steps", "init_from",
         "freeze", "unfrozen_lr", "bf16", "channels_last", "compile", "nan_policy")
SHORT = {"dataset": "-d", "out": "-o"}


def _flag(name: str) -> Callable:
    """The click option of setting ``name``: type, choices, help and defaults from its field."""
    f, inv = FIELDS[name], model_defaults("inversionnet")
    shown = "" if f.default == "" else f"  [default: {f.default}" + (
        f"; inversionnet: {inv[name]}]" if name in inv else "]")
    return click.option(f"--{name.replace('_', '-')}", *filter(None, [SHORT.get(name)]), name,
                        type=click.Choice(CHOICES[name]) if name in CHOICES else type(f.default),
                        default=None, required=name == "out", help=f.metadata["doc"] + shown)


def _flags(command: Callable) -> Callable:
    """Apply the options of :data:`FLAGS`, listed in that order in ``--help``."""
    for name in reversed(FLAGS):
        command = _flag(name)(command)
    return command


@click.command("train")
@_flags
@click.option("--config", "config_file", default=None, metavar="NAME|FILE.toml",
              help=f"Settings file or bundled config ({', '.join(bundled_configs())}); flags "
                   "override it.")
@click.option("--resume", is_flag=True, help="Continue RUN from its last.pt and config.toml.")
@click.option("--set", "set_items", multiple=True, metavar="KEY=VALUE",
              help="Any other setting, e.g. --set critic_norm=none (repeatable).")
def train_cmd(config_file: str | None, resume: bool, set_items: tuple[str, ...], **flags) -> None:
    """Train VelocityGAN (InversionNet generator + WGAN-GP critic) or InversionNet.

    Settings: reference defaults < --config NAME|FILE.toml < flags. The resolved settings are
    written to RUN/config.toml. Under `torchrun --nproc_per_node K` the same command trains
    with DistributedDataParallel.
    """
    from ..train import load_toml_config, resolve_config, train

    overrides = parse_key_values(set_items, "--set", "n_critic=1", bare_strings=True)
    overrides |= {k: v for k, v in flags.items() if v is not None}
    saved = Path(flags["out"]) / "config.toml"
    base = load_toml_config(saved) if resume and saved.is_file() else None
    cfg = resolve_config(base=base, file=config_file, overrides=overrides)
    if not resume:
        for key in ("train", "val"):
            if not getattr(cfg, key):
                raise ConfigError(f"no {key} split given; pass --{key} SPLIT_FILE")
    train(cfg, resume=resume)
