"""``velocitygan data ...``: inspect and validate OpenFWI-layout datasets."""

from __future__ import annotations

from pathlib import Path

import click

from ..data import check_split, get_dataset

DATASET_HELP = "Benchmark name (flatvel-a ...), a dataset.json card, or FILE.toml[#NAME]."


@click.group("data")
def data_group() -> None:
    """Inspect and validate datasets."""


@data_group.command("check")
@click.argument("split_file", type=click.Path(path_type=Path))
@click.option("--dataset", "-d", default="flatvel-a", show_default=True, help=DATASET_HELP)
def check(split_file: Path, dataset: str) -> None:
    """Validate every file of SPLIT_FILE and print a summary; exit 1 if anything is wrong."""
    spec = get_dataset(dataset)
    s = check_split(split_file, spec)
    click.echo(f"split      {s.split}")
    click.echo(f"dataset    {spec.name}")
    click.echo(f"files      {s.files}")
    click.echo(f"samples    {s.samples}")
    if s.samples:
        click.echo(f"seismic    {s.seismic_min:.4g} .. {s.seismic_max:.4g} (raw amplitude)")
        if s.labeled and s.velocity_min <= s.velocity_max:
            click.echo(f"velocity   {s.velocity_min:.1f} .. {s.velocity_max:.1f} m/s")
    click.echo(f"problems   {len(s.problems)}")
    for p in s.problems:
        click.echo(f"  - {p}", err=True)
    if not s.ok:
        raise click.exceptions.Exit(1)
