"""deepwave forward operator, converted to OpenFWI's polarity and timing.

This is the only module of the package that imports deepwave, and it does so lazily inside
:func:`simulate_deepwave`, so the package works without deepwave (torch backend only).

deepwave's scalar propagator with the same wavelet, source/receiver cells, 4th-order accuracy
and a 10-cell PML reproduces OpenFWI's recipe to 0.1-0.3 % relative L2 on slow-edged models
(see below) once its receiver output is negated and advanced by one sample (the recipe's sample
``t`` is deepwave's sample ``t + 1``), so we run one extra step and drop deepwave's first sample.
A 10-cell PML is within 0.15 % of an unbounded domain and twice as fast on CPU as 20 cells (54
vs 103 ms per sample, one thread).

Where a model's edges are much faster than its slowest cell (most FlatVel, CurveVel, FlatFault
and CurveFault-A maps), the recipe's sponge, tuned to the slowest velocity, lets a weak boundary
echo back after ~0.5 s; deepwave's PML absorbs it. The records then differ by 0.9-4.6 % relative
L2 (about 0.2 % of the energy, all late); the ``torch`` backend reproduces the echo exactly.
``bench/backend_agreement.py`` measures this per family.
"""

from __future__ import annotations

import torch

from velocitygan.errors import ConfigError
from velocitygan.physics.acquisition import Acquisition

__all__ = ["simulate_deepwave", "DEEPWAVE_COURANT", "DEEPWAVE_PML_CELLS"]

# deepwave's default Courant number 0.6 halves its internal step for v > ~4250 m/s at dx=10 m,
# dt=1 ms (double cost, larger error); 0.8 is still stable for the 4th-order scheme.
DEEPWAVE_COURANT = 0.8
DEEPWAVE_PML_CELLS = 10
# A fixed max_vel keeps deepwave's internal time step (and hence results) independent of the
# batch's fastest model; 4500 m/s is OpenFWI's upper bound. Faster models raise it per call.
DEEPWAVE_MAX_VEL_MPS = 4500.0


def simulate_deepwave(velocity_mps: torch.Tensor, acquisition: Acquisition,
                      wavelet: torch.Tensor) -> torch.Tensor:
    """Simulate all shots of all models with deepwave (``deepwave.scalar``).

    Args:
        velocity_mps: ``(N, nz, nx)`` float32 velocity in m/s (checked), on CPU or CUDA.
        acquisition: Geometry and discretisation (``pad_cells`` is not used: deepwave has a PML).
        wavelet: ``(nt,)`` source time function on the same device.

    Returns:
        ``(N, n_shots, nt, n_receivers)`` float32 in OpenFWI's polarity and timing.
    """
    try:
        import deepwave
    except ImportError:
        raise ConfigError("backend 'deepwave' needs the deepwave package (pip install deepwave); "
                          "or use backend='torch'") from None
    acq = acquisition
    n_models, n_shots, dev = velocity_mps.shape[0], acq.n_shots, velocity_mps.device
    # deepwave's batched models: one model per shot, shots of a model are consecutive.
    v = velocity_mps.repeat_interleave(n_shots, dim=0)
    src_loc = torch.tensor([[[acq.src_z, x]] for x in acq.src_x], device=dev, dtype=torch.long)
    rec_loc = torch.tensor([[acq.rec_z, x] for x in acq.rec_x], device=dev, dtype=torch.long)
    amp = torch.cat([wavelet, wavelet.new_zeros(1)])  # one extra step, see module docstring
    amp = amp.reshape(1, 1, -1).expand(n_models * n_shots, 1, -1).contiguous()
    max_vel = max(DEEPWAVE_MAX_VEL_MPS, float(velocity_mps.detach().max()))
    out = deepwave.scalar(
        v, acq.dx_m, acq.dt_s, source_amplitudes=amp,
        source_locations=src_loc.repeat(n_models, 1, 1),
        receiver_locations=rec_loc[None].expand(n_models * n_shots, -1, -1).contiguous(),
        accuracy=4, pml_width=DEEPWAVE_PML_CELLS, pml_freq=acq.peak_freq_hz, max_vel=max_vel,
        courant_number=DEEPWAVE_COURANT)
    rec = -out[-1][..., 1:]  # (N*S, R, nt+1) less the first sample
    return rec.reshape(n_models, n_shots, acq.n_receivers, acq.nt).transpose(2, 3)
