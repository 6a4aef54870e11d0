"""The ``velocitygan`` command line: parses arguments and calls library functions."""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click
from tqdm.auto import tqdm

from .. import __version__
from ..errors import VelocityGANError
from ..hostmem import reuse_freed_memory
from . import data, evaluate, fwi, generate, study, train

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="velocitygan")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Data-driven seismic full-waveform inversion (VelocityGAN, InversionNet) on
    OpenFWI-layout data: generate, train, evaluate, predict, refine with FWI, report."""
    if ctx.invoked_subcommand != "train":  # train follows its reuse_host_memory setting
        reuse_freed_memory()  # CPU inference 1.6-2.4x faster (hostmem_cpu.md)


for _command in (data.data_group, generate.generate, generate.simulate, train.train_cmd,
                 evaluate.evaluate_cmd, evaluate.predict_cmd, evaluate.plot_group,
                 evaluate.report_cmd, evaluate.export_cmd, evaluate.pretrained_cmd,
                 fwi.fwi_cmd, fwi.invert_cmd, study.study_group):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one line on stderr and return exit status 2, errors
    of the system (disk full, permission denied) one line and status 1."""
    shown = warnings.showwarning

    def one_line(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: Any = None, line: str | None = None) -> None:
        """A library's UserWarning as one ``warning: ...`` line (above any progress bar)."""
        if issubclass(category, UserWarning):
            tqdm.write(f"warning: {message}", file=sys.stderr)
        else:
            shown(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line
    try:
        return _run(argv)
    finally:
        warnings.showwarning = shown


def _one_line(exc: Exception) -> str:
    """The message of ``exc``; for an error re-raised by a DataLoader worker (its text is the
    worker's whole traceback) only the original one-line message."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    kind, sep, message = last.partition(": ")
    return message if sep and kind.rsplit(".", 1)[-1] == type(exc).__name__ else last


def _run(argv: list[str] | None) -> int:
    try:
        result = cli.main(args=argv, prog_name="velocitygan", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return 130
    except VelocityGANError as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:  # the system refused: disk full, permissions, a vanished file
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0
