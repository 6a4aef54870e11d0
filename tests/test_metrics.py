"""Metrics against hand-computed values and an independent per-pixel SSIM written here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from velocitygan.metrics import (
    MetricAccumulator,
    mae,
    mae_per_sample,
    mse,
    rmse,
    rmse_per_sample,
    ssim,
    ssim_per_sample,
)


def _layered(rng: np.random.Generator, n: int) -> np.ndarray:
    """Smooth layered maps on the normalised scale, (n, 1, 70, 70)."""
    out = np.empty((n, 1, 70, 70))
    z = np.arange(70)[:, None]
    x = np.arange(70)[None, :]
    for i in range(n):
        v = np.full((70, 70), -0.8)
        depths, values = np.sort(rng.integers(5, 65, 4)), np.sort(rng.uniform(-0.6, 0.9, 4))
        for depth, val in zip(depths, values, strict=True):
            v = np.where(z + 3 * np.sin(x / 9 + i) > depth, val, v)
        out[i, 0] = v
    return out


def _reference_ssim(a: np.ndarray, b: np.ndarray, mode: str) -> float:
    """SSIM of two (H, W) maps in [-1, 1], by explicit per-pixel weighted window sums.

    ``mode``: "constant" (zero padding), "reflect" or "valid". Written independently of the
    library: Gaussian 11 x 11, sigma 1.5 (weights normalised over the full window),
    C1 = 0.01^2, C2 = 0.03^2 on maps rescaled to [0, 1].
    """
    r = np.arange(11) - 5
    g = np.exp(-(r**2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    a, b = a / 2 + 0.5, b / 2 + 0.5
    h, wd = a.shape
    if mode == "valid":
        pa, pb, centres = a, b, [(i, j) for i in range(5, h - 5) for j in range(5, wd - 5)]
        off = 0
    else:
        pa, pb = np.pad(a, 5, mode=mode), np.pad(b, 5, mode=mode)
        centres, off = [(i, j) for i in range(h) for j in range(wd)], 5
    values = []
    for i, j in centres:
        pi, pj = i + off - 5, j + off - 5
        wa, wb = pa[pi : pi + 11, pj : pj + 11], pb[pi : pi + 11, pj : pj + 11]
        mu_a, mu_b = (w * wa).sum(), (w * wb).sum()
        var_a = (w * wa * wa).sum() - mu_a**2
        var_b = (w * wb * wb).sum() - mu_b**2
        cov = (w * wa * wb).sum() - mu_a * mu_b
        c1, c2 = 0.01**2, 0.03**2
        values.append(
            (2 * mu_a * mu_b + c1) * (2 * cov + c2)
            / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        )  # fmt: skip
    return float(np.mean(values))


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    true = _layered(rng, 3)
    pred = np.clip(true + rng.normal(0, 0.08, true.shape) + 0.05, -1, 1)
    return pred, true


def test_mae_rmse_hand_computed() -> None:
    pred = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    true = torch.zeros_like(pred)
    # |e| = 0, 1, 1, 0.5 and 0, 0, 0, 0 -> 2.5 / 8; e^2 = 2.25 / 8.
    assert mae(pred, true).item() == pytest.approx(2.5 / 8)
    assert rmse(pred, true).item() == pytest.approx(math.sqrt(2.25 / 8))
    assert mae_per_sample(pred, true).tolist() == pytest.approx([2.5 / 4, 0.0])
    assert rmse_per_sample(pred, true).tolist() == pytest.approx([math.sqrt(2.25 / 4), 0.0])
    acc = MetricAccumulator(half_range_mps=1500.0)
    acc.update(pred[:1], true[:1])
    acc.update(pred[1:], true[1:])
    out = acc.compute()
    # Global RMSE is sqrt of the global MSE, not the mean of per-sample RMSEs.
    assert out["rmse"] == pytest.approx(math.sqrt(2.25 / 8))
    assert out["rmse"] != pytest.approx(float(rmse_per_sample(pred, true).mean()))
    assert out["mae_mps"] == pytest.approx(2.5 / 8 * 1500.0)
    assert out["rmse_mps"] == pytest.approx(math.sqrt(2.25 / 8) * 1500.0)
    assert out["samples"] == 2


def test_ssim_identical_maps_is_one(pair) -> None:
    _, true = pair
    t = torch.from_numpy(true)
    assert ssim(t, t).item() == pytest.approx(1.0, abs=1e-6)


def test_ssim_matches_independent_zero_padded_computation(pair) -> None:
    pred, true = pair
    ours = ssim_per_sample(torch.from_numpy(pred), torch.from_numpy(true)).numpy()
    ref = [_reference_ssim(pred[i, 0], true[i, 0], "constant") for i in range(len(pred))]
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    assert 0.3 < min(ref) < max(ref) < 0.99  # a non-trivial comparison


def test_metrics_are_batched_and_keep_device_and_shape(pair) -> None:
    pred, true = pair
    p, t = torch.from_numpy(pred).float(), torch.from_numpy(true).float()
    per = ssim_per_sample(p, t)
    assert per.shape == (3,)
    assert ssim(p, t).item() == pytest.approx(per.mean().item(), abs=1e-6)
    # (N, H, W) and (H, W) inputs are accepted too.
    assert ssim(p[:, 0], t[:, 0]).item() == pytest.approx(ssim(p, t).item(), abs=1e-6)
    assert ssim(p[0, 0], t[0, 0]).item() == pytest.approx(per[0].item(), abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_metrics_on_gpu_match_cpu(pair) -> None:
    pred, true = pair
    p, t = torch.from_numpy(pred).float(), torch.from_numpy(true).float()
    gpu = ssim_per_sample(p.cuda(), t.cuda())
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.cpu().numpy(), ssim_per_sample(p, t).numpy(), atol=1e-5)
    acc = MetricAccumulator()
    acc.update(p.cuda(), t.cuda())
    assert acc.compute()["mae"] == pytest.approx(mae(p, t).item(), rel=1e-5)


def test_mismatched_shapes_are_refused_not_broadcast():
    pred, true = torch.zeros(4, 1, 70, 70), torch.zeros(4, 70, 70)
    for fn in (mae, mse, mae_per_sample, rmse_per_sample):
        with pytest.raises(ValueError, match="does not match"):
            fn(pred, true[:3])
    assert float(mae(pred, true)) == 0.0  # (N, H, W) against (N, 1, H, W): same maps
    with pytest.raises(ValueError, match="does not match"):
        MetricAccumulator().update(pred, torch.zeros(2, 1, 70, 70))
