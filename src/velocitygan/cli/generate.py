"""``velocitygan generate`` and ``velocitygan simulate``: synthetic OpenFWI-layout data."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ConfigError
from .options import parse_key_values

DEVICES = click.Choice(["auto", "cpu", "cuda"])
BACKENDS = click.Choice(["auto", "deepwave", "torch"])
BACKEND_HELP = ("Forward operator. auto = torch: OpenFWI's exact recipe (120-cell sponge) on "
                "every device. deepwave: faster approximation whose PML absorbs the recipe's "
                "late boundary echo (0.9-4.6% relative L2 on most families).")
FAMILY_NAMES = ("flatvel-a, flatvel-b, curvevel-a, curvevel-b, flatfault-a, flatfault-b, "
                "curvefault-a, curvefault-b, style-a, style-b")


def _parse_shape(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        nz, nx = (int(v) for v in text.replace("x", ",").split(","))
    except ValueError:
        raise ConfigError(f"--shape {text!r}: expected NZ,NX, e.g. --shape 2801,13601") from None
    if nz < 1 or nx < 1:
        raise ConfigError(f"--shape {text!r}: both sizes must be >= 1")
    return nz, nx


@click.command("generate")
@click.option("--family", "-f", default=None, help=f"Velocity-map family: {FAMILY_NAMES}.")
@click.option("--from-model", "from_model", type=click.Path(path_type=Path), default=None,
              help="Cut 70x70 patches from this velocity model (.npy, or raw float32 .bin) "
                   "instead of a family.")
@click.option("--samples", "-n", type=int, default=None,
              help="Number of samples (required with --family; with --from-model: first N "
                   "patches).")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output folder: data/, model/, train.txt, val.txt, dataset.json.")
@click.option("--seed", type=int, default=0, show_default=True, help="Dataset seed.")
@click.option("--shard-size", type=int, default=500, show_default=True,
              help="Samples per data{k}.npy file.")
@click.option("--val-fraction", type=float, default=None,
              help="Fraction of the samples in val.txt: the last round(F x samples), in shards "
                   "of their own (train.txt and val.txt list different files); an error where "
                   "it rounds to none or to all [default: 0.1; none below 5 samples].")
@click.option("--workers", type=int, default=None,
              help="CPU worker processes [default: one per core; in-process on CUDA].")
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--backend", type=BACKENDS, default="auto", show_default=True, help=BACKEND_HELP)
@click.option("--batch-size", type=int, default=None,
              help="Samples per forward-model call [4 on CPU, 256 on CUDA].")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Override a family parameter, e.g. --param n_layers=[3,8] (repeatable).")
@click.option("--name", default=None, help="Dataset name in dataset.json [folder name].")
@click.option("--overwrite", is_flag=True, help="Replace a different dataset already in --out.")
@click.option("--dx", "dx_m", type=float, default=None,
              help="--from-model: grid spacing of the file in metres (resampled to 10 m).")
@click.option("--shape", default=None, help="--from-model raw file: NZ,NX.")
@click.option("--axis-order", type=click.Choice(["zx", "xz"]), default="zx", show_default=True,
              help="--from-model: zx = rows are depths; xz = rows are x positions.")
@click.option("--stride", "stride_cells", type=int, default=35, show_default=True,
              help="--from-model: patch step in 10 m cells.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def generate(family, from_model, samples, out, seed, shard_size, val_fraction, workers, device,
             backend, batch_size, params, name, overwrite, dx_m, shape, axis_order, stride_cells,
             quiet) -> None:
    """Simulate an OpenFWI-layout dataset from a velocity-map family or a large velocity model.

    Resumable: rerun the same command to complete an interrupted generation.
    """
    from ..synth import generate_dataset
    from ..synth.patches import generate_from_model

    if (family is None) == (from_model is None):
        raise ConfigError("give exactly one of --family NAME or --from-model FILE")
    ctx = click.get_current_context()
    given = {p.name for p in ctx.command.params
             if ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE}
    foreign = sorted(given & ({"seed", "params"} if family is None else
                              {"dx_m", "shape", "axis_order", "stride_cells"}))
    if foreign:
        flags = ", ".join("--" + {"params": "param", "dx_m": "dx", "stride_cells": "stride",
                                  "axis_order": "axis-order"}.get(f, f) for f in foreign)
        raise ConfigError(f"{flags} only apply to "
                          f"{'--family' if family is None else '--from-model'}; drop them")
    writer = dict(shard_size=shard_size, val_fraction=val_fraction, workers=workers,
                  device=device, backend=backend, batch_size=batch_size, progress=not quiet,
                  overwrite=overwrite, name=name)
    if family is not None:
        if samples is None:
            raise ConfigError("--family needs --samples N")
        family_params = parse_key_values(params, "--param", "n_layers=[3,8]", bare_strings=False)
        card = generate_dataset(out, family, samples, seed=seed, params=family_params, **writer)
    else:
        if dx_m is None:
            raise ConfigError("--from-model needs --dx METRES (grid spacing of the file)")
        # warnings about the model (clipping, axis order) print before the simulation starts
        card = generate_from_model(out, from_model, dx_m=dx_m, shape=_parse_shape(shape),
                                   axis_order=axis_order, stride_cells=stride_cells,
                                   max_samples=samples, **writer)
    samples = json.loads(Path(card).read_text())["samples"]
    click.echo(f"dataset card: {card} ({samples['train']} training, {samples['val']} "
               "validation samples)")


@click.command("simulate")
@click.option("--velocity", "-v", type=click.Path(path_type=Path), required=True,
              help="Velocity maps in m/s (.npy): (70,70), (N,70,70) or (N,1,70,70).")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Output .npy: float32 (N,5,1000,70) raw pressure, OpenFWI convention.")
@click.option("--backend", type=BACKENDS, default="auto", show_default=True, help=BACKEND_HELP)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option("--batch-size", type=int, default=None,
              help="Maps per forward-model call [4 on CPU, 256 on CUDA].")
@click.option("--workers", type=int, default=None, help="CPU worker processes [one per core].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def simulate(velocity, out, backend, device, batch_size, workers, quiet) -> None:
    """Forward-model velocity maps exactly as the OpenFWI data were made."""
    from ..synth.simulate import simulate_file

    shape = simulate_file(velocity, out, backend=backend, device=device, batch_size=batch_size,
                          workers=workers, progress=not quiet)
    click.echo(f"wrote {out} {tuple(shape)}")
