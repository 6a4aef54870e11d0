"""FWI: gradient vs finite differences, convergence on a small layered model, filters, checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from evalkit import ctrl_c_at_call

from velocitygan import physics
from velocitygan.errors import ConfigError, DataError
from velocitygan.fwi import (
    BoundedVelocity,
    band_schedule,
    gaussian_smooth,
    lowpass,
    parse_freqs,
    run_fwi,
    total_variation,
)
from velocitygan.fwi.inversion import _base_wavelet, _Problem
from velocitygan.physics import Acquisition, forward_model

# A tiny survey: 20 x 20 cells (200 m), 3 shots, 250 ms -- milliseconds per simulation.
TINY = Acquisition(nz=20, nx=20, nt=250, src_x=(0, 10, 19), rec_x=tuple(range(20)), pad_cells=20)


def layered(n: int = 1, acq: Acquisition = TINY) -> torch.Tensor:
    """Three flat layers (2000/2600/3200 m/s); sample k>0 has a slower bump in the middle."""
    v = torch.full((n, acq.nz, acq.nx), 2000.0)
    v[:, acq.nz * 2 // 5 :] = 2600.0
    v[:, acq.nz * 3 // 4 :] = 3200.0
    for k in range(1, n):
        v[k, acq.nz // 3 : acq.nz // 2, acq.nx // 3 : 2 * acq.nx // 3] -= 150.0 * k
    return v


@pytest.fixture(scope="module")
def observed() -> torch.Tensor:
    return forward_model(layered(2), TINY)


def test_gradient_matches_finite_differences(observed):
    true = layered(1)
    start = gaussian_smooth(true, 3.0)
    model = BoundedVelocity(start, vmin_mps=1500.0, vmax_mps=4500.0)
    problem = _Problem(observed[:1], _base_wavelet(TINY, "cpu"), TINY, backend="auto",
                       device=torch.device("cpu"), tv_weight=0.0, clip_q=None, chunk=4)
    problem.set_band(None)
    loss0, _ = problem.loss_and_grad(model)
    grad = model.latent.grad.detach().double().clone()
    # A smooth random direction in latent space (keeps the perturbation well resolved).
    gen = torch.Generator().manual_seed(0)
    direction = gaussian_smooth(torch.randn(1, TINY.nz, TINY.nx, generator=gen), 2.0)
    direction = direction / direction.abs().max()
    eps = 2e-2
    with torch.no_grad():
        base = model.latent.detach().clone()
        values = []
        for sign in (1.0, -1.0):
            model.latent.copy_(base + sign * eps * direction)
            values.append(problem.loss(model))
        model.latent.copy_(base)
    fd = (values[0] - values[1]) / (2 * eps)
    analytic = float((grad * direction.double()).sum())
    assert loss0 > 0
    assert abs(analytic - fd) <= 0.03 * abs(fd), (analytic, fd)


def test_few_iterations_lower_misfit_and_mae(observed):
    true = layered(2)
    start = gaussian_smooth(true, 3.0)
    res = run_fwi(observed, start, acquisition=TINY, iterations=8, freqs_hz=(10.0, None),
                  true_velocity_mps=true, progress=False)
    assert res.velocity_mps.shape == (2, 1, TINY.nz, TINY.nx)
    start_mae = (start - true).abs().flatten(1).mean(1).numpy()
    assert np.all(res.misfit < 0.8 * res.init_misfit), (res.init_misfit, res.misfit)
    assert np.all(res.mae_mps < start_mae), (start_mae, res.mae_mps)
    assert [h["iteration"] for h in res.history] == list(range(1, 9))
    assert res.history[0]["band_hz"] == 10.0 and res.history[-1]["band_hz"] == "full"
    assert res.velocity_mps.min() >= 1500.0 and res.velocity_mps.max() <= 4500.0


def test_lbfgs_lowers_misfit(observed):
    true = layered(1)
    start = gaussian_smooth(true, 3.0)
    res = run_fwi(observed[:1], start, acquisition=TINY, iterations=3, optimizer="lbfgs",
                  freqs_hz=(None,), tv_weight=1e-3, progress=False)
    assert res.misfit[0] < 0.8 * res.init_misfit[0]


def test_lowpass_of_data_equals_data_of_lowpassed_wavelet():
    v = layered(1)
    w = _base_wavelet(TINY, "cpu")
    for cutoff in (5.0, 10.0):
        a = lowpass(forward_model(v, TINY), TINY.dt_s, cutoff, dim=2)
        b = forward_model(v, TINY, source_wavelet=lowpass(w, TINY.dt_s, cutoff))
        rel = float((a - b).norm() / b.norm())
        assert rel < 0.01, (cutoff, rel)


def test_lowpass_removes_high_frequencies_and_is_causal():
    t = torch.zeros(1000)
    t[100] = 1.0
    y = lowpass(t, 0.001, 10.0)
    assert float(y[:100].abs().max()) < 1e-6 * float(y.abs().max())  # causal: nothing before
    spec = torch.fft.rfft(y).abs()
    f = torch.fft.rfftfreq(1000, 0.001)
    # 4th-order Butterworth: -24 dB per octave above the corner, ~(10/60)^4 at 60 Hz.
    assert float(spec[f > 60].max()) < 2e-3 * float(spec[f < 3].max())
    assert float(spec[(f > 0) & (f < 5)].min()) > 0.9 * float(spec[0])
    assert torch.equal(lowpass(t, 0.001, None), t)


def test_band_schedule_and_parse():
    assert band_schedule(7, (5.0, 10.0, None)) == [5.0, 5.0, 10.0, 10.0, None, None, None]
    assert parse_freqs("5, 10,full") == (5.0, 10.0, None)
    with pytest.raises(ConfigError):
        parse_freqs("5,abc")


def test_bounded_parameterisation_and_tv():
    v0 = torch.tensor([[[1500.0, 3000.0], [4500.0, 2000.0]]])
    m = BoundedVelocity(v0, vmin_mps=1500.0, vmax_mps=4500.0)
    v = m().detach()
    assert torch.allclose(v, v0, atol=1e-3)  # bounds included
    # a step beyond the bounds is simulated at the bound and projected back, and the
    # gradient at a bound is not damped (a sigmoid parameterisation would damp it)
    with torch.no_grad():
        m.latent.add_(torch.tensor([[[-0.2, 0.0], [0.3, 0.0]]]))
    assert float(m().detach().min()) == 1500.0 and float(m().detach().max()) == 4500.0
    m().sum().backward()
    assert torch.equal(m.latent.grad, torch.full((1, 2, 2), 3000.0))
    m.project()
    assert float(m.latent.detach().min()) == 0.0 and float(m.latent.detach().max()) == 1.0
    flat = torch.ones(1, 5, 5)
    step = flat.clone()
    step[:, :, 3:] = 0.0
    assert float(total_variation(flat)) < 1e-2 < float(total_variation(step))


def _no_simulation(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("simulation started before the input checks")

    monkeypatch.setattr(physics, "forward_model", boom)


@pytest.mark.parametrize(
    ("case", "error", "text"),
    [
        ("nt", DataError, "acquisition expects"),
        ("start_out_of_bounds", DataError, "outside the velocity bounds"),
        ("start_shape", DataError, "start model has shape"),
        ("nan", DataError, "NaN"),
        ("freq", ConfigError, "Nyquist"),
        ("optimizer", ConfigError, "optimizer"),
        ("true_shape", DataError, "true model has shape"),
        ("zero_sample", DataError, r"sample\(s\) 1 are all zero"),
        ("vmax", ConfigError, "unstable"),
        ("band_order", ConfigError, "low to high"),
        ("tv_nan", ConfigError, "TV weight"),
        ("device", ConfigError, "device"),
    ],
)
def test_bad_input_fails_before_inversion(monkeypatch, case, error, text):
    _no_simulation(monkeypatch)
    obs = np.ones((2, 3, 250, 20), np.float32)
    start = np.full((2, 1, 20, 20), 2500.0, np.float32)
    kw = {"acquisition": TINY, "iterations": 5, "progress": False}
    if case == "nt":
        obs = np.ones((5, 1000, 70), np.float32)  # OpenFWI-shaped data, tiny acquisition
    elif case == "start_out_of_bounds":
        start[0, 0, 0, 0] = 1200.0
    elif case == "start_shape":
        start = start[:, :, :10]
    elif case == "nan":
        obs[1, 0, 0, 0] = np.nan
    elif case == "freq":
        kw["freqs_hz"] = (5.0, 900.0)
    elif case == "optimizer":
        kw["optimizer"] = "sgd"
    elif case == "true_shape":
        kw["true_velocity_mps"] = np.full((3, 20, 20), 2500.0, np.float32)
    elif case == "zero_sample":
        obs[1] = 0.0
    elif case == "vmax":
        kw["vmax_mps"] = 8000.0
    elif case == "band_order":
        kw["freqs_hz"] = (10.0, 5.0, None)
    elif case == "tv_nan":
        kw["tv_weight"] = float("nan")
    elif case == "device":
        kw["device"] = "gpu"
    with pytest.raises(error, match=text):
        run_fwi(obs, start, **kw)


def test_default_acquisition_rejects_small_data(monkeypatch):
    _no_simulation(monkeypatch)
    with pytest.raises(DataError, match=r"\(N, 5, 1000, 70\)"):
        run_fwi(np.ones((1, 5, 500, 70), np.float32), np.full((70, 70), 2500.0), progress=False)


def test_a_start_on_the_lower_bound_moves_off_it():
    """Network predictions often sit on 1500 m/s: FWI must be able to raise them (a sigmoid
    parameterisation moved such a cell by 0.1 m/s per iteration)."""
    true = layered(1)
    start = true.clone()
    start[:, : TINY.nz * 2 // 5] = 1500.0  # the 2000 m/s top layer, started on the bound
    obs = forward_model(true, TINY)
    r = run_fwi(obs, start, acquisition=TINY, iterations=8, freqs_hz=(None,), progress=False)
    top = float(r.velocity_mps[0, 0, 2 : TINY.nz * 2 // 5].mean())
    assert top > 1540.0, top  # ~1500.7 with the sigmoid


def test_interrupted_inversion_resumes_to_the_uninterrupted_iterates(observed, tmp_path,
                                                                     monkeypatch):
    start = gaussian_smooth(layered(2), 3.0)
    kw = {"acquisition": TINY, "iterations": 6, "freqs_hz": (10.0, None), "progress": False}
    want = run_fwi(observed, start, **kw)
    state = tmp_path / "fwi_state.pt"
    ctrl_c_at_call(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        run_fwi(observed, start, state_path=state, save_every=3, **kw)
    saved = torch.load(state, weights_only=True)
    assert saved["iteration"] == 4 and len(saved["history"]) == 4  # the last complete one
    # a start recomputed with other rounding (thread count, device) is the same start
    got = run_fwi(observed, start + 1e-4, state_path=state, **kw)
    np.testing.assert_array_equal(got.velocity_mps, want.velocity_mps)
    assert [r["iteration"] for r in got.history] == list(range(1, 7))
    with pytest.raises(ConfigError, match=r"iterations 6 \(there\) vs 8 \(now\)"):
        run_fwi(observed, start, state_path=state, **{**kw, "iterations": 8})
    with pytest.raises(ConfigError, match="another start model"):
        run_fwi(observed, start + 1.0, state_path=state, **kw)
    with pytest.raises(ConfigError, match=r"\(other observed\); repeat"):
        run_fwi(observed + 1.0, start, state_path=state, **kw)


def test_normalised_data_given_as_raw_are_flagged(observed):
    from velocitygan.data import get_dataset, normalize_seismic

    start = layered(2)  # the true model: a misfit far above 1 can only come from the data
    normalised = normalize_seismic(observed, get_dataset("flatvel-a"))
    with pytest.warns(UserWarning, match="may not be raw amplitudes"):
        run_fwi(normalised, start, acquisition=TINY, iterations=0, progress=False)


def test_gaussian_smooth_wider_than_the_map_stays_bounded():
    v = torch.linspace(1500.0, 4500.0, 70).repeat(70, 1).T[None]  # (1, 70, 70), grows with depth
    wide = gaussian_smooth(v, 1e5)  # would pad by 3e5 cells (and allocate TBs) without the cap
    assert wide.shape == v.shape and torch.isfinite(wide).all()
    assert 1500.0 <= float(wide.min()) and float(wide.max()) <= 4500.0
    assert float(wide.std()) < float(v.std()) / 2  # much smoother than the map
