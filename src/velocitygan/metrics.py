"""OpenFWI benchmark metrics: MAE, RMSE and SSIM on the normalised [-1, 1] velocity scale.

Conventions (as the published tables): MAE and MSE are averaged over all pixels of all samples;
RMSE is ``sqrt`` of that global MSE. SSIM rescales maps to [0, 1] (``x / 2 + 0.5``), uses an
11 x 11 Gaussian window with sigma 1.5, zero-padded 'same' convolution, C1 = 0.01^2,
C2 = 0.03^2, and averages over all pixels and samples. Multiply normalised MAE/RMSE by half the
label range (1500 for 1500-4500 m/s) for m/s.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_window", "mae", "mse", "rmse", "mae_per_sample", "rmse_per_sample", "ssim",
           "ssim_map", "ssim_per_sample", "MetricAccumulator"]

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def _as_nchw(x: torch.Tensor) -> torch.Tensor:
    if x.dim() == 2:
        return x[None, None]
    if x.dim() == 3:
        return x[:, None]
    return x


def _difference(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """``pred - true`` as ``(N, C, H, W)``; shapes must agree (no silent broadcasting, which
    would compare every prediction with every map)."""
    a, b = _as_nchw(pred), _as_nchw(true)
    if a.shape != b.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} does not match target shape "
                         f"{tuple(true.shape)}")
    return a - b


def mae(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all pixels (same units as the inputs)."""
    return _difference(pred, true).abs().mean()


def mse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all pixels."""
    return (_difference(pred, true) ** 2).mean()


def rmse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Square root of the global MSE (the benchmark's 'RMSE')."""
    return mse(pred, true).sqrt()


def mae_per_sample(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """MAE of each sample, shape ``(N,)`` (same units as the inputs)."""
    return _difference(pred, true).abs().flatten(1).mean(1)


def rmse_per_sample(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """RMSE of each sample, shape ``(N,)`` (same units as the inputs)."""
    return (_difference(pred, true) ** 2).flatten(1).mean(1).sqrt()


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, *, device=None,
                    dtype=torch.float32) -> torch.Tensor:
    """Normalised 2-D Gaussian window, shape ``(1, 1, size, size)``."""
    r = torch.arange(size, device=device, dtype=torch.float64) - size // 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g).to(dtype)[None, None]


def ssim_map(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Per-pixel SSIM of normalised maps ([-1, 1]), ``(H, W)``, ``(N, H, W)`` or
    ``(N, C, H, W)``; shape ``(N, C, H, W)``.

    Zero-padded 'same' windows, the OpenFWI convention of the published numbers (reflected or
    'valid' windows, as other SSIM libraries use, read 0.01-0.04 lower on 70 x 70 maps).
    """
    # float64 inside: var = E[x^2] - mu^2 cancels badly in float32 (errors ~1e-4 in SSIM).
    dtype = torch.float32 if pred.device.type == "mps" else torch.float64
    a = _as_nchw(pred).to(dtype) / 2 + 0.5
    b = _as_nchw(true).to(dtype) / 2 + 0.5
    c = a.shape[1]
    w = gaussian_window(device=a.device, dtype=dtype).expand(c, 1, SSIM_WINDOW, SSIM_WINDOW)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, w, padding=SSIM_WINDOW // 2, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_a**2 + mu_b**2 + SSIM_C1) * (var_a + var_b + SSIM_C2)
    return (num / den).float()


def ssim_per_sample(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """SSIM of each sample (OpenFWI convention), ``(N,)``."""
    return ssim_map(pred, true).flatten(1).mean(1)


def ssim(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """SSIM averaged over all pixels and samples (OpenFWI convention)."""
    return ssim_map(pred, true).mean()


class MetricAccumulator:
    """Accumulates global MAE, MSE and SSIM over batches of normalised maps.

    Args:
        half_range_mps: half the label range in m/s (1500 for 1500-4500 m/s), for m/s figures.
    """

    def __init__(self, half_range_mps: float = 1500.0) -> None:
        self.half_range_mps = half_range_mps
        self.abs_sum = 0.0
        self.sq_sum = 0.0
        self.ssim_sum = 0.0
        self.pixels = 0
        self.samples = 0

    @torch.no_grad()
    def update(self, pred: torch.Tensor, true: torch.Tensor) -> None:
        """Add a batch ``(N, 1, H, W)`` of predictions and targets (normalised scale)."""
        pred, true = pred.float(), true.float()
        diff = _difference(pred, true)
        self.abs_sum += float(diff.abs().sum())
        self.sq_sum += float((diff**2).sum())
        self.ssim_sum += float(ssim_per_sample(pred, true).sum())
        self.pixels += diff.numel()
        self.samples += diff.shape[0]

    def compute(self) -> dict[str, float]:
        """``mae``, ``rmse``, ``ssim`` (normalised) and ``mae_mps``, ``rmse_mps``, ``samples``."""
        if self.pixels == 0:
            raise ValueError("no samples accumulated")
        m = self.abs_sum / self.pixels
        r = (self.sq_sum / self.pixels) ** 0.5
        return {"mae": m, "rmse": r, "ssim": self.ssim_sum / self.samples,
                "mae_mps": m * self.half_range_mps, "rmse_mps": r * self.half_range_mps,
                "samples": self.samples}
