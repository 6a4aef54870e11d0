"""Velocity parameterisation, starting models and regularisation for FWI.

The optimiser works on the velocity scaled to [0, 1] over the bounds, ``u``:
``v = vmin + (vmax - vmin) * u``, projected back into [0, 1] after every step, so every iterate
stays inside ``[vmin, vmax]`` m/s (the label range of the OpenFWI families, 1500-4500 m/s, by
default) and the wave simulation never sees an unstable or negative velocity. A velocity at a
bound moves as freely as one in the middle (a sigmoid of an unbounded latent would keep the
bounds too, but its slope vanishes there: a start at 1503 m/s moves by 0.1 m/s per iteration
where one at 3000 m/s moves by 22).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["BoundedVelocity", "gaussian_smooth", "linear_gradient_model", "total_variation"]


class BoundedVelocity(torch.nn.Module):
    """Velocity in ``[vmin_mps, vmax_mps]``, optimised as ``latent`` = velocity scaled to
    [0, 1] over the bounds and kept there by :meth:`project` after each optimiser step.

    Between a step and its projection (an L-BFGS line search tries points beyond the bounds)
    the velocity is clamped to the bounds while gradients pass through unchanged, so a trial
    point outside is simulated at the bound and the search can still come back.

    Args:
        init_velocity_mps: start model ``(N, nz, nx)`` in m/s, inside the bounds.
        vmin_mps: lower bound in m/s.
        vmax_mps: upper bound in m/s.
    """

    def __init__(self, init_velocity_mps: torch.Tensor, *, vmin_mps: float, vmax_mps: float):
        super().__init__()
        self.vmin_mps, self.vmax_mps = float(vmin_mps), float(vmax_mps)
        span = self.vmax_mps - self.vmin_mps
        u = ((init_velocity_mps.double() - self.vmin_mps) / span).clamp(0.0, 1.0)
        self.latent = torch.nn.Parameter(u.float())

    def normalised(self) -> torch.Tensor:
        """Current velocity scaled to [0, 1] (clamped value, identity gradient)."""
        u = self.latent
        return u + (u.clamp(0.0, 1.0) - u).detach()

    def forward(self) -> torch.Tensor:
        """Current velocity ``(N, nz, nx)`` in m/s."""
        return self.vmin_mps + (self.vmax_mps - self.vmin_mps) * self.normalised()

    @torch.no_grad()
    def project(self) -> None:
        """Put the parameter back inside the bounds (after an optimiser step)."""
        self.latent.clamp_(0.0, 1.0)


def gaussian_smooth(velocity_mps: torch.Tensor, sigma_cells: float) -> torch.Tensor:
    """Gaussian-smooth maps ``(N, nz, nx)`` with standard deviation ``sigma_cells`` grid cells.

    Edges are replicated, so a smoothed layered model keeps its surface and bottom velocities.
    """
    if sigma_cells <= 0:
        return velocity_mps.clone()
    # the cap bounds the padding (and memory) for a sigma far wider than the map; below it
    # (sigma up to the map size) the usual 3-sigma truncation applies
    radius = min(max(1, int(math.ceil(3 * sigma_cells))), 3 * max(velocity_mps.shape[-2:]))
    r = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(r**2) / (2 * sigma_cells**2))
    k = (k / k.sum()).to(velocity_mps.dtype).to(velocity_mps.device)
    x = F.pad(velocity_mps[:, None], (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, k.reshape(1, 1, -1, 1))
    x = F.conv2d(x, k.reshape(1, 1, 1, -1))
    return x[:, 0]


def linear_gradient_model(n: int, nz: int, nx: int, *, top_mps: float = 1500.0,
                          bottom_mps: float = 4500.0) -> torch.Tensor:
    """Start models ``(n, nz, nx)`` whose velocity grows linearly with depth, in m/s."""
    col = torch.linspace(top_mps, bottom_mps, nz, dtype=torch.float32)
    return col[None, :, None].expand(n, nz, nx).clone()


def total_variation(u: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Isotropic total variation per sample, ``(N,)``: mean over pixels of ``|grad u|``.

    ``u`` is ``(N, nz, nx)``, normally the velocity scaled to [0, 1] (``BoundedVelocity``), so
    the TV weight does not depend on the velocity units. ``eps`` smooths the kink at zero.
    """
    dz = u[:, 1:, :-1] - u[:, :-1, :-1]
    dx = u[:, :-1, 1:] - u[:, :-1, :-1]
    return torch.sqrt(dz**2 + dx**2 + eps).flatten(1).mean(1)
