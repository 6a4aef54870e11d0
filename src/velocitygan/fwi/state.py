"""Saved progress of an FWI run, so that an interrupted inversion continues where it stopped.

The state file holds the velocity parameter, the optimiser's state, the iterations done and
their history, the start model, and the inversion's stamp (:func:`velocitygan.io.stamp` of the
settings and a hash of the observed data): a state is only taken up by the same inversion.
The start model is compared within a tolerance, not by its bytes: recomputed (a network's
prediction, a smoothed model) its last bits depend on the thread count and the device.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import ConfigError
from ..io import differences

__all__ = ["FWIState", "load_state"]

# start maps within this of the saved ones (m/s) are the same start
START_TOLERANCE_MPS = 0.01


@dataclass
class FWIState:
    """Progress after ``iteration`` completed iterations (what :func:`load_state` returns and
    :meth:`save` writes).

    Attributes:
        stamp: the stamp of the inversion this belongs to.
        start: the start maps ``(N, nz, nx)`` in m/s.
        iteration: iterations completed.
        latent: the velocity parameter (``BoundedVelocity.latent``) after them.
        band: corner frequency of the last completed iteration (None = full band).
        optimizer: the optimiser's ``state_dict`` (meaningful within ``band``).
        history: the per-iteration rows so far (the last one's ``time_s`` is the wall time
            spent so far).
    """

    stamp: dict[str, Any]
    start: torch.Tensor | None = None
    iteration: int = 0
    latent: torch.Tensor | None = None
    band: float | None = None
    optimizer: dict[str, Any] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)

    def update(self, iteration: int, latent: torch.Tensor, band: float | None,
               optimizer: torch.optim.Optimizer, history: list[dict]) -> None:
        """Record the state after ``iteration`` (copies: later steps do not change it)."""
        self.iteration, self.band = iteration, band
        self.latent = latent.detach().cpu().clone()
        self.optimizer = copy.deepcopy(optimizer.state_dict())
        self.history = [dict(row) for row in history]

    def save(self, path: str | Path) -> None:
        """Write the state atomically."""
        save_checkpoint(path, {"kind": "fwi_state", "stamp": self.stamp, "start": self.start,
                               "iteration": self.iteration, "latent": self.latent,
                               "band": self.band, "optimizer": self.optimizer,
                               "history": self.history})


def load_state(path: str | Path, expected: dict[str, Any], start_mps: torch.Tensor) -> FWIState:
    """Read a saved state; raise :class:`ConfigError` unless it belongs to the inversion whose
    stamp is ``expected`` and whose start maps are ``start_mps`` (within
    :data:`START_TOLERANCE_MPS`)."""
    ck = load_checkpoint(path)
    if ck.get("kind") != "fwi_state":
        raise ConfigError(f"{path}: not an FWI state file")
    saved = ck.get("start")
    same_start = (isinstance(saved, torch.Tensor) and saved.shape == start_mps.shape
                  and float((saved - start_mps.cpu()).abs().max()) <= START_TOLERANCE_MPS)
    if ck.get("stamp") != expected or not same_start:
        there = ck.get("stamp") or {}
        big = [k for k in ("observed_sha256", "acquisition") if there.get(k) != expected.get(k)]
        what = [f"other {k.split('_')[0]}" for k in big]  # too long to print: data hash, receivers
        if rest := differences(there, expected, sorted(set(expected) - set(big))):
            what.append(rest)
        raise ConfigError(f"{path}: saved by another FWI run "
                          f"({', '.join(what) or 'another start model'}); "
                          "repeat that run's command, or remove the file to start afresh")
    return FWIState(stamp=expected, start=saved, iteration=int(ck["iteration"]),
                    latent=ck["latent"], band=ck["band"], optimizer=ck["optimizer"],
                    history=list(ck["history"]))
