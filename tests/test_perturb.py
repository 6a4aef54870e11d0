"""Perturbations of raw seismic data: noise SNR, dead traces/shots, time shift, flip."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from velocitygan.errors import ConfigError
from velocitygan.perturb import (
    OPENFWI_SRC_X,
    add_noise_snr,
    drop_shots,
    drop_traces,
    flip_lr,
    flipped_source_columns,
    measure_snr_db,
    time_shift,
)

DX_M, DT_S, V_MPS = 10.0, 0.001, 2000.0


def direct_wave_gathers(src_x=OPENFWI_SRC_X, nt=1000, nr=70, n=None) -> np.ndarray:
    """Analytic direct-wave gathers of a laterally invariant medium: a Ricker-like pulse per
    trace arriving at |r - s| * dx / v (plus a flat reflection), (5, nt, nr) float32."""
    t_s = np.arange(nt) * DT_S
    out = np.zeros((len(src_x), nt, nr), np.float32)
    for k, s in enumerate(src_x):
        for r in range(nr):
            for t0, amp in ((0.073 + abs(r - s) * DX_M / V_MPS, 40.0), (0.4, -8.0)):
                a = (np.pi * 15.0 * (t_s - t0)) ** 2
                out[k, :, r] += amp * (1 - 2 * a) * np.exp(-a)
    return out if n is None else np.stack([out * (1 + 0.1 * i) for i in range(n)])


@pytest.fixture(scope="module")
def gathers() -> np.ndarray:
    return direct_wave_gathers()


@pytest.mark.parametrize("snr_db", [30.0, 10.0, 0.0, -5.0])
@pytest.mark.parametrize("per", ["shot", "sample"])
def test_noise_snr_within_half_db(gathers, snr_db, per):
    noisy = add_noise_snr(gathers, snr_db, np.random.default_rng(1), per=per)
    measured = measure_snr_db(gathers, noisy, per=per)
    assert measured.shape == ((5,) if per == "shot" else (1,))
    assert np.all(np.abs(measured - snr_db) < 0.5), measured
    assert noisy.dtype == np.float32 and noisy.shape == gathers.shape


def test_noise_batch_and_purity(gathers):
    x = direct_wave_gathers(n=3)
    before = x.copy()
    noisy = add_noise_snr(x, 10.0, np.random.default_rng(0))
    assert noisy.dtype == np.float32
    assert np.array_equal(x, before)  # input untouched
    measured = measure_snr_db(x, noisy)
    assert measured.shape == (15,) and np.all(np.abs(measured - 10.0) < 0.5)
    # seeded: same seed -> same noise
    assert np.array_equal(add_noise_snr(x, 5.0, 7), add_noise_snr(x, 5.0, 7))
    assert not np.array_equal(add_noise_snr(x, 5.0, 7), add_noise_snr(x, 5.0, 8))


def test_noise_zero_gather_stays_zero_and_inf_snr_is_copy(gathers):
    x = gathers.copy()
    x[2] = 0
    noisy = add_noise_snr(x, 0.0, 0)
    assert np.all(noisy[2] == 0) and not np.array_equal(noisy[0], x[0])
    same = add_noise_snr(x, float("inf"), 0)
    assert np.array_equal(same, x) and same is not x


@pytest.mark.parametrize("fraction,expected", [(0.0, 0), (0.1, 7), (0.3, 21), (1.0, 70)])
def test_drop_traces_exact_count_same_in_all_shots(gathers, fraction, expected):
    out = drop_traces(gathers, fraction, np.random.default_rng(3))
    dead = np.all(out == 0, axis=1)  # (shot, receiver)
    assert np.all(dead.sum(axis=1) == expected)
    assert np.all(dead == dead[0])  # same receivers in every shot
    alive = ~dead[0]
    assert np.array_equal(out[:, :, alive], gathers[:, :, alive])


def test_drop_traces_per_shot_and_batched():
    x = direct_wave_gathers(n=4)
    out = drop_traces(x, 0.2, 11, same_for_all_shots=False)
    dead = (out == 0).all(axis=2)  # (N, shot, receiver)
    assert np.all(dead.sum(axis=-1) == 14)
    assert not np.all(dead == dead[:, :1])  # shots differ
    assert not np.all(dead[0] == dead[1])  # samples differ
    assert not (x == 0).all(axis=2).any()  # input untouched


def test_drop_shots_exact(gathers):
    x = np.stack([gathers, gathers])
    out = drop_shots(x, 2, np.random.default_rng(5))
    for i in range(2):
        zero = [k for k in range(5) if np.all(out[i, k] == 0)]
        assert len(zero) == 2
        kept = [k for k in range(5) if k not in zero]
        assert np.array_equal(out[i, kept], x[i, kept])
    assert np.array_equal(drop_shots(gathers, 0, 0), gathers)


@pytest.mark.parametrize("shift", [7, -7, 0])
def test_time_shift_moves_event(shift):
    x = np.zeros((5, 1000, 70), np.float32)
    x[:, 100, :] = 1.0
    x[:, 0, 3] = 2.0  # first sample: lost or moved
    out = time_shift(x, shift)
    assert np.all(out[:, 100 + shift, :] == 1.0)
    assert out.sum() == pytest.approx(x.sum() - (10.0 if shift < 0 else 0.0))
    if shift > 0:
        assert np.all(out[:, :shift] == 0) and out[0, shift, 3] == 2.0


def test_time_shift_of_arrival_peak(gathers):
    out = time_shift(gathers, 12)
    assert np.argmax(out[2, :, 34]) == np.argmax(gathers[2, :, 34]) + 12


def test_flip_is_its_own_inverse(gathers):
    y = np.random.default_rng(0).uniform(1500, 4500, (1, 70, 70)).astype(np.float32)
    xf, yf = flip_lr(gathers, y)
    assert not np.array_equal(xf, gathers) and not np.array_equal(yf, y)
    x2, y2 = flip_lr(xf, yf)
    assert np.array_equal(x2, gathers) and np.array_equal(y2, y)
    assert np.array_equal(yf[0, :, 0], y[0, :, 69])
    assert np.array_equal(xf[0, :, 0], gathers[4, :, 69])  # shot order and receivers reversed
    x3, y3 = flip_lr(xf[None], yf[None])
    assert np.array_equal(x3[0], gathers) and np.array_equal(y3[0], y)  # batched
    assert flip_lr(gathers)[1] is None


def test_flip_maps_source_positions(gathers):
    assert flipped_source_columns() == (0, 17, 35, 52, 69)
    xf, _ = flip_lr(gathers)
    # the direct wave arrives first at the source column: find it in each flipped shot
    first = [int(np.argmin(np.argmax(np.abs(xf[k]) > 1.0, axis=0))) for k in range(5)]
    assert tuple(first) == flipped_source_columns()
    # symmetric shots of a laterally invariant medium are unchanged; the centre one is not
    assert np.allclose(xf[[0, 1, 3, 4]], gathers[[0, 1, 3, 4]], atol=1e-4)
    assert not np.allclose(xf[2], gathers[2], atol=1e-2)


def test_flip_recentre_restores_centre_source_for_invariant_medium(gathers):
    xr, _ = flip_lr(gathers, recentre=True)
    first = [int(np.argmin(np.argmax(np.abs(xr[k]) > 1.0, axis=0))) for k in range(5)]
    assert tuple(first) == OPENFWI_SRC_X
    # exact away from the edge column that had to be repeated
    assert np.allclose(xr[:, :, :69], gathers[:, :, :69], atol=1e-4)


@pytest.mark.parametrize(
    "call",
    [
        lambda x: add_noise_snr(x, float("nan"), 0),
        lambda x: add_noise_snr(x, 10, 0, per="trace"),
        lambda x: drop_traces(x, 1.5, 0),
        lambda x: drop_shots(x, 6, 0),
        lambda x: time_shift(x, 1000),
        lambda x: time_shift(x, 2.5),
        lambda x: add_noise_snr(x[0, 0], 10, 0),
    ],
)
def test_bad_values_raise_config_error(gathers, call):
    with pytest.raises(ConfigError):
        call(gathers)


def test_functions_pickle_free_of_state():
    # module-level functions only: nothing to pickle but names
    assert pickle.loads(pickle.dumps(add_noise_snr)) is add_noise_snr


def test_flip_against_forward_operator():
    """A flipped record is the mirrored model's record with sources at (0, 17, 35, 52, 69);
    recentring brings the centre shot close to the true shot at column 34."""
    physics = pytest.importorskip("velocitygan.physics")
    z, x = np.mgrid[0:70, 0:70]
    v = np.where(z < 20 + 8 * np.sin(x / 15.0) + 0.1 * x, 1800.0, 3200.0).astype(np.float32)
    mirrored = np.ascontiguousarray(v[:, ::-1])
    rec = physics.forward_model(np.stack([v, mirrored])).numpy()
    at35 = physics.forward_model(
        mirrored, acquisition=physics.Acquisition(src_x=flipped_source_columns())
    ).numpy()[0]

    def rel(a, b):
        return float(np.linalg.norm(a - b) / np.linalg.norm(b))

    as_is, _ = flip_lr(rec[0])
    recentred, _ = flip_lr(rec[0], recentre=True)
    assert rel(as_is, at35) < 1e-4
    for k in (0, 1, 3, 4):
        assert rel(as_is[k], rec[1][k]) < 1e-4
    assert rel(as_is[2], rec[1][2]) > 0.3
    assert rel(recentred[2], rec[1][2]) < 0.1
