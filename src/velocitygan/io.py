"""Atomic file writes (a temporary file in the same folder, then ``os.replace``) and stamps
(does an output still belong to its inputs and settings?)."""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import json
import os
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = ["atomic_path", "check_output_file", "exclusive_lock", "fsync_path", "preallocate",
           "read_json", "read_toml", "save_npy", "stamp", "write_csv", "write_json", "write_text"]

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    A crash leaves at most a hidden ``.NAME.*.tmp`` file, never a half-written ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give users' files the usual mode
    try:
        yield Path(tmp)
        fsync_path(tmp)  # the content reaches the disk before the name does (power loss)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def check_output_file(path: str | Path, flag: str) -> Path:
    """``path`` if it can become a file; a one-line error naming ``flag`` otherwise (a folder is
    there, a file stands where a parent folder should be, or that folder is not writable), so
    that a command fails before its work rather than after it."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ConfigError(f"{flag} {p} is a folder; give a file name")
    parent = next(q for q in p.absolute().parents if q.exists())
    if not parent.is_dir():
        raise ConfigError(f"{flag} {p}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{flag} {p}: cannot write in {parent}")
    return p


def fsync_path(path: str | Path) -> None:
    """Flush a file that other processes (or memory maps) wrote to disk before it is renamed."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def preallocate(path: str | Path) -> None:
    """Reserve the disk blocks of a file that memory maps will fill (``np.lib.format.
    open_memmap`` makes it sparse): a full disk then fails here with ``OSError`` (ENOSPC)
    instead of killing the writing process with SIGBUS later. A no-op where the file system
    cannot preallocate."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    except AttributeError:  # pragma: no cover - no posix_fallocate (not Linux)
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_lock(path: str | Path, what: str, *, wait: bool = False) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block; another process
    holding it gives a one-line :class:`ConfigError` naming ``what``, or with ``wait`` a wait
    until it lets go."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another process is writing {what}; wait for it to finish or "
                              "choose another output") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | Path, rows: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
    """Write ``rows`` (dicts) under the header ``columns`` atomically: other keys are left out,
    None is an empty cell, floats keep 6 significant digits."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n",
                            extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(path, buf.getvalue())


def read_json(path: str | Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when the file is missing, unreadable or holds
    something else."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def differences(there: Mapping[str, Any], now: Mapping[str, Any],
                keys: Iterable[str] | None = None) -> str:
    """``"key old (there) vs new (now), ..."`` for the ``keys`` (default: all) whose values
    differ between a stored and a fresh set of settings; ``""`` when none does."""
    keys = sorted(set(there) | set(now)) if keys is None else list(keys)
    return ", ".join(f"{k} {there.get(k)!r} (there) vs {now.get(k)!r} (now)"
                     for k in keys if there.get(k) != now.get(k))


def stamp(settings: Mapping[str, Any], files: Iterable[str | Path] = ()) -> dict[str, Any]:
    """What an output is made from, to keep with it: the output is current while its kept stamp
    equals a fresh one (``==``).

    ``settings`` as JSON reads them back; under ``"files"`` (when given) each input file as
    ``[resolved path, size in bytes, mtime in ns]``, ``-1, -1`` when missing, so a file
    rewritten since is another input.
    """
    out = json.loads(json.dumps(dict(settings), default=str))
    for f in files:
        p = Path(f).expanduser().resolve()
        try:
            st = p.stat()
            out.setdefault("files", []).append([str(p), st.st_size, st.st_mtime_ns])
        except OSError:
            out.setdefault("files", []).append([str(p), -1, -1])
    return out


def read_toml(path: str | Path, what: str = "TOML file") -> dict[str, Any]:
    """Parse a TOML file; a missing or invalid file raises a one-line ``ConfigError``."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{path}: {what} not found")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None
