"""Data consistency: do a velocity model's simulated data match the recorded data?

``data_misfit`` forward-models each velocity map with the same operator that made the data
(``velocitygan.physics.forward_model``) and returns the relative L2 misfit per sample,
``||F(v) - d|| / ||d||``: about 0 for the true model (up to the operator's accuracy), near 1
(or more) for a model the data do not support.
"""

from __future__ import annotations

import torch

from .. import physics
from ..device import resolve_device
from .checks import as_observed, as_velocity_batch

__all__ = ["relative_misfit", "data_misfit"]


def relative_misfit(simulated: torch.Tensor, observed: torch.Tensor, *,
                    squared: bool = False) -> torch.Tensor:
    """Relative L2 misfit per sample ``||s - d|| / ||d||``, shape ``(N,)`` (dimensionless).

    ``squared``: its square, the FWI objective (differentiable also at a perfect fit, where the
    square root's gradient is not).
    """
    num = (simulated - observed).flatten(1).pow(2).sum(1)
    ratio = num / observed.flatten(1).pow(2).sum(1).clamp_min(1e-30)
    return ratio if squared else ratio.sqrt()


@torch.no_grad()
def data_misfit(pred_mps, observed_raw, acquisition=None, backend: str = "auto", *,
                device: str | torch.device | None = None, batch_size: int = 16) -> torch.Tensor:
    """Relative L2 seismic misfit of each velocity map against raw observed data.

    Args:
        pred_mps: velocity maps in m/s, ``(N, 1, nz, nx)``, ``(N, nz, nx)`` or ``(nz, nx)``
            (numpy or torch).
        observed_raw: raw (not normalised) seismic ``(N, shots, nt, receivers)`` or
            ``(shots, nt, receivers)``, as recorded with ``acquisition``.
        acquisition: ``velocitygan.physics.Acquisition``; OpenFWI's by default.
        backend: forward-operator backend: ``"auto"`` = ``"torch"`` (OpenFWI's recipe) or
            ``"deepwave"`` (the fast approximation).
        device: where to simulate (``None``: the physics default).
        batch_size: maps simulated per call (bounds memory).

    Returns:
        float32 CPU tensor ``(N,)`` of ``||F(v) - d|| / ||d||``.

    Raises:
        DataError: shapes that do not match each other or the acquisition, NaN/Inf.
    """
    acq = acquisition if acquisition is not None else physics.Acquisition()
    obs = as_observed(observed_raw, acq)
    vel = as_velocity_batch(pred_mps, obs.shape[0], acq, "predicted velocity")
    # the CPU recipe's compiled kernel pays off at once; torch.compile on CUDA would compile per
    # batch size (~25 s each), so CUDA stays eager here
    on_cpu = (resolve_device(device).type if device is not None else vel.device.type) == "cpu"
    out = []
    for i in range(0, obs.shape[0], batch_size):
        sim = physics.forward_model(vel[i : i + batch_size], acq, backend=backend, device=device,
                                    eager=not on_cpu)
        out.append(relative_misfit(sim.float().cpu(), obs[i : i + batch_size]))
    return torch.cat(out)
