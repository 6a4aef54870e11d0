"""Seeded perturbation callables: raw_transform for evaluation, augmentation for training."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from velocitygan.data import (
    OpenFWIDataset,
    SplitEntry,
    denormalize_seismic,
    get_dataset,
    normalize_seismic,
    write_split,
)
from velocitygan.errors import ConfigError
from velocitygan.perturb import RawPerturbation, TrainAugmentation, measure_snr_db

SPEC = get_dataset("flatvel-a")


def _seismic(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5, 1000, 70)).astype(np.float32)
    return x * np.linspace(20, 0.1, 1000, dtype=np.float32)[None, None, :, None]


@pytest.fixture()
def tiny_split(tmp_path):
    x = _seismic(4)
    y = np.random.default_rng(1).uniform(1500, 4500, (4, 1, 70, 70)).astype(np.float32)
    np.save(tmp_path / "d.npy", x)
    np.save(tmp_path / "m.npy", y)
    write_split(tmp_path / "val.txt", [SplitEntry(tmp_path / "d.npy", tmp_path / "m.npy")])
    return tmp_path / "val.txt", x


def test_raw_transform_deterministic_per_index():
    x = _seismic(1)[0]
    t = RawPerturbation(noise_snr_db=10, missing_trace_fraction=0.2, missing_shots=1,
                           time_shift_samples=3, seed=4)
    a, b = t(x, 5), t(x, 5)
    assert np.array_equal(a, b) and not np.array_equal(a, x)
    assert not np.array_equal(t(x, 6), a)  # another index, another draw
    assert not np.array_equal(RawPerturbation(noise_snr_db=10, seed=5)(x, 5),
                              RawPerturbation(noise_snr_db=10, seed=4)(x, 5))
    t2 = pickle.loads(pickle.dumps(t))  # DataLoader workers
    assert np.array_equal(t2(x, 5), a)
    assert np.all(x == _seismic(1)[0])  # input untouched
    dead_shots = [k for k in range(5) if np.all(a[k] == 0)]
    assert len(dead_shots) == 1
    live = [k for k in range(5) if k not in dead_shots]
    assert np.all(np.all(a[live] == 0, axis=1).sum(axis=1) == 14)


def test_streams_are_independent_of_other_settings():
    x = _seismic(1)[0]
    noise_only = RawPerturbation(noise_snr_db=5, seed=1)(x, 2)
    with_traces = RawPerturbation(noise_snr_db=5, missing_trace_fraction=0.1, seed=1)(x, 2)
    alive = ~np.all(with_traces == 0, axis=(0, 1))
    assert np.array_equal(noise_only[..., alive], with_traces[..., alive])


def test_raw_transform_label_identity_and_validation():
    assert RawPerturbation().is_identity and RawPerturbation().label == "clean"
    t = RawPerturbation(noise_snr_db=10, missing_shots=2, time_shift_samples=-5)
    assert t.label == "noise 10 dB SNR, 2 shots missing, time shift -5 samples"
    assert t.to_dict()["missing_shots"] == 2 and not t.is_identity
    x = _seismic(1)[0]
    out = RawPerturbation()(x, 0)
    assert np.array_equal(out, x) and out is not x
    for bad in (dict(noise_snr_db=float("nan")), dict(missing_trace_fraction=-0.1),
                dict(missing_shots=-1), dict(time_shift_samples=1.5), dict(seed=-1)):
        with pytest.raises(ConfigError):
            RawPerturbation(**bad)


def test_raw_transform_in_dataset_gives_requested_snr(tiny_split):
    split, x = tiny_split
    ds = OpenFWIDataset(split, SPEC, raw_transform=RawPerturbation(noise_snr_db=20, seed=0))
    clean = OpenFWIDataset(split, SPEC)
    for i in range(len(ds)):
        xn, y = ds[i]
        xc, yc = clean[i]
        assert torch.equal(y, yc)
        raw = denormalize_seismic(xn.double(), SPEC).numpy()
        assert np.all(np.abs(measure_snr_db(x[i].astype(np.float64), raw) - 20) < 0.5)
    assert torch.equal(ds[2][0], ds[2][0])


def _pairs(n: int):
    xs = torch.from_numpy(normalize_seismic(_seismic(n), SPEC))
    # seeded: the augmentation draws its coins from the label's content
    ys = torch.rand(n, 1, 70, 70, generator=torch.Generator().manual_seed(n)) * 2 - 1
    return xs, ys


def test_train_transform_reproducible_per_epoch_and_physical():
    aug = TrainAugmentation(spec=SPEC, noise_snr_db=10.0, trace_dropout=0.1, flip=True,
                            prob=1.0, flip_recentre=False, seed=7)
    xs, ys = _pairs(4)
    out0 = [aug(x, y) for x, y in zip(xs, ys, strict=True)]
    again = [pickle.loads(pickle.dumps(aug))(x, y) for x, y in zip(xs, ys, strict=True)]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(out0, again, strict=True))
    aug.set_epoch(1)
    out1 = [aug(x, y) for x, y in zip(xs, ys, strict=True)]
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(out0, out1, strict=True))
    flipped = 0
    zero = torch.from_numpy(normalize_seismic(np.zeros(1, np.float32), SPEC))
    for (x, y), (xa, ya) in zip(zip(xs, ys, strict=True), out0, strict=True):
        is_flipped = torch.equal(ya, y.flip(-1))
        assert is_flipped or torch.equal(ya, y)
        flipped += is_flipped
        if is_flipped:  # undo the flip to compare with the clean data
            xa, ya = xa.flip(-3, -1), ya.flip(-1)
        raw_clean = denormalize_seismic(x.double(), SPEC)
        raw_aug = denormalize_seismic(xa.double(), SPEC)
        dead = (xa == zero).all(dim=0).all(dim=0)
        assert int(dead.sum()) == 7  # a dead trace is a normalised raw zero
        keep = ~dead
        snr = measure_snr_db(raw_clean[..., keep].numpy(), raw_aug[..., keep].numpy())
        assert np.all(np.abs(snr - 10) < 0.5)
    assert 0 < flipped < 4  # a coin per sample (seed 7 gives both outcomes)


def test_train_transform_prob_zero_only_flips():
    aug = TrainAugmentation(spec=SPEC, noise_snr_db=0.0, trace_dropout=0.5, prob=0.0)
    xs, ys = _pairs(2)
    for x, y in zip(xs, ys, strict=True):
        xa, ya = aug(x, y)
        assert torch.equal(xa, x) and torch.equal(ya, y)


def test_raw_perturbation_is_frozen():
    t = RawPerturbation(noise_snr_db=3)
    with pytest.raises(AttributeError):
        t.seed = 2  # type: ignore[misc]
