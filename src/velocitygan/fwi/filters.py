"""Causal low-pass filters for frequency continuation (multiscale FWI).

Frequency continuation inverts the data band by band, low to high: in each band the observed
data AND the source wavelet are low-pass filtered with the same filter, so the simulated data
(a linear function of the wavelet) stay consistent with the filtered observations.

We use a *causal* Butterworth filter applied in the frequency domain: its analog response
``H(f) = prod_k (-p_k) / (i 2 pi f - p_k)`` (poles ``p_k`` on a circle of radius
``2 pi f_cut``) is evaluated on the FFT grid of a zero-padded trace. A zero-phase filter would
smear the wavelet to negative times, which a simulation cannot start from; with a causal filter,
filtering the recorded (time-truncated) data equals simulating with the filtered wavelet over the
recording window, up to the filter's decay inside the padding.
"""

from __future__ import annotations

import math

import torch

__all__ = ["butterworth_response", "decay_samples", "lowpass"]


def decay_samples(dt_s: float, cutoff_hz: float, order: int) -> int:
    """Samples after which the filter's impulse response has decayed by ``e^-10`` (~5e-5).

    The slowest pole has real part ``-2 pi f_cut sin(pi / (2 order))``.
    """
    rate = 2 * math.pi * cutoff_hz * math.sin(math.pi / (2 * order))
    return int(math.ceil(10.0 / rate / dt_s))


def butterworth_response(n_fft: int, dt_s: float, cutoff_hz: float, *, order: int = 4,
                         device=None) -> torch.Tensor:
    """Complex64 response ``(n_fft // 2 + 1,)`` of a causal Butterworth low-pass on the
    ``rfft`` grid of ``n_fft`` samples at ``dt_s`` s: -3 dB at ``cutoff_hz`` Hz, roll-off
    6 * ``order`` dB per octave."""
    freqs_hz = torch.fft.rfftfreq(n_fft, d=dt_s, device=device).double()
    s = 2j * math.pi * freqs_hz
    wc = 2 * math.pi * cutoff_hz
    resp = torch.ones_like(s)
    for k in range(1, order + 1):
        pole = wc * complex(math.cos(math.pi * (2 * k + order - 1) / (2 * order)),
                            math.sin(math.pi * (2 * k + order - 1) / (2 * order)))
        resp = resp * (-pole) / (s - pole)
    return resp.to(torch.complex64)


def lowpass(x: torch.Tensor, dt_s: float, cutoff_hz: float | None, *, dim: int = -1,
            order: int = 4) -> torch.Tensor:
    """Causally low-pass filter a real tensor ``x`` (traces, a wavelet) along its time axis
    ``dim`` sampled at ``dt_s`` s; same shape and dtype, differentiable.

    ``cutoff_hz`` is the corner frequency in Hz; ``None`` or ``<= 0`` returns ``x`` unchanged.
    """
    if cutoff_hz is None or cutoff_hz <= 0:
        return x
    nt = x.shape[dim]
    n_fft = nt + decay_samples(dt_s, cutoff_hz, order)  # no circular wrap of the response
    resp = butterworth_response(n_fft, dt_s, cutoff_hz, order=order, device=x.device)
    shape = [1] * x.dim()
    shape[dim] = resp.numel()
    spec = torch.fft.rfft(x.float(), n=n_fft, dim=dim) * resp.reshape(shape)
    out = torch.fft.irfft(spec, n=n_fft, dim=dim)
    return out.narrow(dim, 0, nt).to(x.dtype)
