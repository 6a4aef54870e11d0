"""The one device resolver: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to a checked torch.device;
and the CPU cores this process may use."""

from __future__ import annotations

import os

import torch

from .errors import ConfigError

__all__ = ["cpu_count", "resolve_device"]


def resolve_device(device: str | torch.device | None = "auto", local_rank: int = 0) -> torch.device:
    """``auto`` (or None) -> CUDA when available, else CPU; ``cuda`` -> GPU ``local_rank``.

    ``local_rank`` spreads ``torchrun`` processes over the GPUs (modulo their count); an
    explicit ``cuda:N`` is kept. An unknown name or CUDA without a GPU is a ConfigError.
    """
    name = "auto" if device is None else str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda[:N]")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but torch sees no CUDA GPU; "
                              "use --device cpu")
        if dev.index is None:
            dev = torch.device("cuda", local_rank % torch.cuda.device_count())
    return dev


def cpu_count() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
