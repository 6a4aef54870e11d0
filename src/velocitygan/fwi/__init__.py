"""Physics-driven full-waveform inversion (FWI) through ``velocitygan.physics``.

Library entry point: ``run_fwi(observed_raw, init_velocity_mps, *, acquisition, iterations,
...) -> FWIResult``. Submodules: ``filters`` (frequency continuation), ``model`` (bounded
parameterisation, start models, total variation), ``checks`` (input validation),
``inversion`` (the loop), ``report`` (files and figures).
"""

from .filters import butterworth_response, lowpass
from .inversion import DEFAULT_FREQS_HZ, FWIResult, band_schedule, parse_freqs, run_fwi
from .model import BoundedVelocity, gaussian_smooth, linear_gradient_model, total_variation

__all__ = [
    "DEFAULT_FREQS_HZ",
    "BoundedVelocity",
    "FWIResult",
    "band_schedule",
    "butterworth_response",
    "gaussian_smooth",
    "linear_gradient_model",
    "lowpass",
    "parse_freqs",
    "run_fwi",
    "total_variation",
]
