"""SEG-Y input (optional ``segyio``): read shot gathers and resample them to the model's grid.

Reading convention: traces are grouped into shots by a trace-header field, by default
``FieldRecord`` (bytes 9-12, the field record / shot number); ``"source_x"`` groups by
``SourceX`` (bytes 73-76) instead. Shots keep the order in which they first appear in the file.
Within a shot, traces are ordered by receiver position ``GroupX`` (bytes 81-84) when the file
records it (the values differ within the shot); otherwise they keep file order. Every shot
must hold the same number of traces. The sample interval comes from the binary header (or the
first trace header), in microseconds; records must start at the shot (no recording delay).

Resampling (:func:`resample_gathers`, numpy only): time by linear interpolation onto
``k * dt_out`` for ``k < nt_out`` (zero after the end of the record, no anti-alias filter:
decimating to 1 ms keeps everything below 500 Hz, far above the 15 Hz source); receivers by
linear interpolation over the normalised spread position when their count differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError

__all__ = ["SegyGathers", "read_segy_gathers", "resample_gathers", "read_segy_for_model"]

SHOT_KEYS = ("field_record", "source_x")


@dataclass
class SegyGathers:
    """Shot gathers from a SEG-Y file: ``data`` float32 ``(shots, nt, receivers)``."""

    data: np.ndarray
    dt_s: float
    shot_ids: list[int]


def read_segy_gathers(path: str | Path, *, shot_key: str = "field_record") -> SegyGathers:
    """Read a SEG-Y file as shot gathers grouped by ``shot_key`` (see the module docstring)."""
    try:
        import segyio
    except ImportError:
        raise ConfigError("SEG-Y input needs the optional package segyio: "
                          "pip install 'velocitygan[segy]'") from None
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: SEG-Y file not found")
    if shot_key not in SHOT_KEYS:
        raise ConfigError(f"unknown shot key {shot_key!r}; use one of {', '.join(SHOT_KEYS)}")
    tf = segyio.TraceField
    field = tf.FieldRecord if shot_key == "field_record" else tf.SourceX
    try:
        with segyio.open(str(path), "r", ignore_geometry=True) as f:
            traces = np.asarray(f.trace.raw[:], dtype=np.float32)
            keys = np.asarray(f.attributes(field)[:]).astype(np.int64)
            group_x = np.asarray(f.attributes(tf.GroupX)[:]).astype(np.int64)
            delay_ms = np.asarray(f.attributes(tf.DelayRecordingTime)[:]).astype(np.int64)
            dt_us = float(segyio.tools.dt(f, fallback_dt=0.0))
    except IndexError:  # what segyio raises for a file without traces
        raise DataError(f"{path}: the SEG-Y file holds no traces") from None
    except (RuntimeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read SEG-Y ({str(exc).splitlines()[0][:160]})") from None
    if delay_ms.any():  # the model's records start at the shot (t = 0)
        raise DataError(f"{path}: traces start {int(delay_ms.max())} ms after the shot "
                        "(DelayRecordingTime); pad them to start at t = 0")
    if dt_us <= 0:
        raise DataError(f"{path}: no sample interval in the binary or trace headers")
    ids, first = np.unique(keys, return_index=True)
    order = ids[np.argsort(first)]
    counts = {int(s): int((keys == s).sum()) for s in order}
    if len(set(counts.values())) != 1:
        raise DataError(f"{path}: shots hold different trace counts {counts}; need equal counts")

    def shot(s: int) -> np.ndarray:  # (nt, receivers), receivers by position when recorded
        idx = np.flatnonzero(keys == s)
        if np.unique(group_x[idx]).size > 1:
            idx = idx[np.argsort(group_x[idx], kind="stable")]
        return traces[idx].T

    data = np.stack([shot(s) for s in order])  # (shots, nt, receivers)
    return SegyGathers(data=data, dt_s=dt_us * 1e-6, shot_ids=[int(s) for s in order])


def resample_gathers(data: np.ndarray, *, dt_in_s: float, dt_out_s: float, nt_out: int,
                     n_receivers_out: int) -> tuple[np.ndarray, str | None]:
    """Resample gathers ``(shots, nt, receivers)`` to ``nt_out`` samples at ``dt_out_s``.

    Returns:
        ``(array float32 (shots, nt_out, n_receivers_out), description or None)`` where the
        description says what changed (None when nothing did).
    """
    if dt_in_s <= 0 or dt_out_s <= 0:
        raise ConfigError(f"sample intervals must be positive, got {dt_in_s} and {dt_out_s}")
    d = np.asarray(data, dtype=np.float64)
    s, nt_in, nr_in = d.shape
    notes = []
    if nt_in != nt_out or not np.isclose(dt_in_s, dt_out_s, rtol=1e-6):
        t_out = np.arange(nt_out) * dt_out_s
        pos = t_out / dt_in_s  # fractional input sample index
        lo = np.clip(np.floor(pos).astype(int), 0, nt_in - 1)
        hi = np.clip(lo + 1, 0, nt_in - 1)
        frac = (pos - lo)[None, :, None]
        d = (1 - frac) * d[:, lo, :] + frac * d[:, hi, :]
        d[:, pos > nt_in - 1, :] = 0.0  # beyond the recorded length
        notes.append(f"time {nt_in} x {dt_in_s * 1e3:g} ms -> {nt_out} x {dt_out_s * 1e3:g} ms")
    if nr_in != n_receivers_out:
        x_in = np.linspace(0.0, 1.0, nr_in)
        x_out = np.linspace(0.0, 1.0, n_receivers_out)
        j = np.clip(np.searchsorted(x_in, x_out, side="right") - 1, 0, max(nr_in - 2, 0))
        jp = np.minimum(j + 1, nr_in - 1)
        span = np.where(jp > j, x_in[jp] - x_in[j], 1.0)
        frac = np.clip((x_out - x_in[j]) / span, 0.0, 1.0)[None, None, :]
        d = (1 - frac) * d[:, :, j] + frac * d[:, :, jp]
        notes.append(f"receivers {nr_in} -> {n_receivers_out} (linear across the spread)")
    note = ("resampled " + "; ".join(notes)) if notes else None
    return d.astype(np.float32), note


def read_segy_for_model(path: str | Path, *, n_shots: int, nt: int, n_receivers: int, dt_s: float,
                        shot_key: str = "field_record") -> tuple[np.ndarray, str]:
    """Read a SEG-Y file and resample it to the model's grid; returns ``(data, one-line note)``."""
    g = read_segy_gathers(path, shot_key=shot_key)
    if g.data.shape[0] != n_shots:
        raise DataError(f"{path}: {g.data.shape[0]} shots (by {shot_key}); the model expects "
                        f"{n_shots}")
    data, note = resample_gathers(g.data, dt_in_s=g.dt_s, dt_out_s=dt_s, nt_out=nt,
                                  n_receivers_out=n_receivers)
    shape = "x".join(map(str, g.data.shape))
    return data, f"{path}: read {shape} (shots x samples x traces); {note or 'no resampling'}"
