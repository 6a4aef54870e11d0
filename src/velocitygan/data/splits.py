"""OpenFWI split files: one line per file pair, ``DATA<TAB>LABEL`` (or ``DATA`` alone)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..io import atomic_path

__all__ = ["SplitEntry", "read_split", "write_split"]


@dataclass(frozen=True)
class SplitEntry:
    """One line of a split file: a seismic file and, for training/evaluation, its label file."""

    data: Path
    label: Path | None = None


def _resolve(text: str, base: Path) -> Path:
    p = Path(os.path.expandvars(os.path.expanduser(text.strip())))
    return p if p.is_absolute() else (base / p)


def read_split(path: str | Path, *, require_labels: bool = False) -> list[SplitEntry]:
    """Read a split file.

    Relative paths resolve against the split file's folder; ``~`` and ``$VARS`` are expanded.
    Blank lines and lines starting with ``#`` are skipped. Columns are separated by a tab
    (or, when there is no tab, by whitespace).
    """
    path = Path(os.path.expandvars(os.path.expanduser(str(path))))
    if not path.is_file():
        raise DataError(f"{path}: split file not found")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()  # a BOM is not a path
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text split file (expected DATA<TAB>LABEL lines)") from None
    base = path.resolve().parent
    entries: list[SplitEntry] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t") if "\t" in line else line.split()
        cols = [c for c in cols if c.strip()]
        if len(cols) > 2:
            raise DataError(
                f"{path}:{lineno}: expected 'DATA<TAB>LABEL' or 'DATA', found {len(cols)} columns"
            )
        label = _resolve(cols[1], base) if len(cols) == 2 else None
        if require_labels and label is None:
            raise DataError(f"{path}:{lineno}: no label file; this command needs DATA<TAB>LABEL")
        entries.append(SplitEntry(_resolve(cols[0], base), label))
    if not entries:
        raise DataError(f"{path}: split file is empty (expected DATA<TAB>LABEL lines)")
    return entries


def write_split(path: str | Path, entries: list[SplitEntry], *, relative: bool = True) -> None:
    """Write a split file atomically (an identical one is left untouched); paths relative to
    its folder when ``relative``."""
    path = Path(path)
    base = path.resolve().parent

    def fmt(p: Path) -> str:
        return os.path.relpath(p.resolve(), base) if relative else str(p.resolve())

    text = "".join(
        fmt(e.data) + (f"\t{fmt(e.label)}" if e.label is not None else "") + "\n" for e in entries
    )
    if path.is_file() and path.read_text() == text:
        return  # unchanged: stamps of results made from this split stay current
    with atomic_path(path) as tmp:
        tmp.write_text(text)
