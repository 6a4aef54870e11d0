"""Self-check of a compiled recipe kernel against the eager PyTorch recipe.

A kernel that compiles but computes something else (a compiler, an architecture, a stale
cached library) would produce output that looks like valid seismic data. Each compiled kernel
therefore runs one probe model through both implementations before its first use.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from velocitygan.physics.acquisition import Acquisition
from velocitygan.physics.torch_backend import simulate_torch

__all__ = ["TOLERANCE", "recipe_disagreement"]

TOLERANCE = 1e-4  # relative L2; float32 rounding differences between implementations are ~1e-6


def recipe_disagreement(
    simulate: Callable[[torch.Tensor, Acquisition, torch.Tensor], torch.Tensor],
    acquisition: Acquisition,
    device: torch.device | str = "cpu",
) -> float:
    """Relative L2 distance between ``simulate(v, acq, w)`` and the eager recipe.

    The probe is one model with velocity increasing with depth and a fast block (not a layer
    cake), and a short sine burst as the source (so that a few dozen steps see real waves).
    """
    acq = acquisition
    depth = torch.arange(acq.nz, device=device, dtype=torch.float32)[:, None]
    v = (1700.0 + 1500.0 * depth / acq.nz).expand(acq.nz, acq.nx)[None].contiguous()
    v[:, acq.nz // 2:, acq.nx // 4: acq.nx // 2] = 3800.0
    w = torch.zeros(acq.nt, device=device)
    burst = min(acq.nt, 20)
    w[:burst] = torch.sin(torch.arange(burst, device=device) * (math.pi / 10))
    with torch.no_grad():
        ref = simulate_torch(v, acq, w)
        got = simulate(v, acq, w)
    return float((got - ref).norm() / ref.norm())
