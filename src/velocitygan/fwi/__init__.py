"""Physics-driven full-waveform inversion (FWI) through ``velocitygan.physics``.

Library entry point: ``run_fwi(observed_raw, init_velocity_mps, *, acquisition, iterations,
...) -> FWIResult``; ``run_hybrid`` starts it from a trained network's prediction, and
``data_misfit`` checks a velocity model against recorded data. Submodules: ``filters``
(frequency continuation), ``model`` (bounded parameterisation, start models, total variation),
``checks`` (input validation), ``misfit`` (relative data misfit), ``inversion`` (the loop),
``hybrid`` (network + FWI), ``state`` (resuming), ``report`` (files and figures).
"""

from .filters import butterworth_response, lowpass
from .hybrid import HybridResult, run_hybrid
from .inversion import DEFAULT_FREQS_HZ, FWIResult, band_schedule, parse_freqs, run_fwi
from .misfit import data_misfit, relative_misfit
from .model import BoundedVelocity, gaussian_smooth, linear_gradient_model, total_variation

__all__ = ["DEFAULT_FREQS_HZ", "BoundedVelocity", "FWIResult", "HybridResult", "band_schedule",
           "butterworth_response", "data_misfit", "gaussian_smooth", "linear_gradient_model",
           "lowpass", "parse_freqs", "relative_misfit", "run_fwi", "run_hybrid", "total_variation"]
