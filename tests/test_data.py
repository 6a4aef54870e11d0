"""Data layer: registry, split files, normalisation, lazy dataset, validation."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from velocitygan.data import (
    OPENFWI_DATASETS,
    OpenFWIDataset,
    denormalize_seismic,
    denormalize_velocity,
    get_dataset,
    normalize_seismic,
    normalize_velocity,
    read_split,
    write_split,
)
from velocitygan.errors import ConfigError, DataError

SPEC = OPENFWI_DATASETS["flatvel-a"]


def test_registry_has_the_ten_benchmark_datasets():
    assert len(OPENFWI_DATASETS) == 10
    s = get_dataset("CurveFault_B")
    assert (s.data_min, s.data_max, s.label_min, s.label_max) == (-24.93, 50.98, 1500, 4500)


def test_dataset_card_and_toml(tmp_path: Path):
    card = tmp_path / "dataset.json"
    card.write_text(json.dumps({"name": "mine", "family": "flatvel-a", "data_min": -20.0,
                                "data_max": 40.0, "label_min": 1500, "label_max": 4500}))
    s = get_dataset(str(card))
    assert s.name == "mine" and s.data_max == 40.0 and s.extra["family"] == "flatvel-a"
    assert get_dataset(str(tmp_path)) == s
    toml = tmp_path / "sets.toml"
    toml.write_text("[datasets.a]\ndata_min = -1.0\ndata_max = 2.0\n"
                    "[datasets.b]\ndata_min = -3.0\ndata_max = 4.0\nlabel_max = 5000.0\n")
    assert get_dataset(f"{toml}#b").label_max == 5000.0
    with pytest.raises(ConfigError, match="pick one"):
        get_dataset(str(toml))
    with pytest.raises(ConfigError, match="unknown dataset"):
        get_dataset("no-such-set")


def test_bad_card_values_are_named(tmp_path: Path):
    card = tmp_path / "dataset.json"
    card.write_text(json.dumps({"data_min": 5.0, "data_max": 40.0}))
    with pytest.raises(ConfigError, match="data_min < 0 < data_max"):
        get_dataset(str(card))


def test_split_paths_resolve_relative_home_and_env(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("VG_ROOT", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    split = tmp_path / "sub" / "val.txt"
    split.parent.mkdir()
    split.write_text("# comment\n\nd.npy\tm.npy\n$VG_ROOT/d.npy\t~/m.npy\nonly.npy\n")
    e = read_split(split)
    assert e[0].data == tmp_path / "sub" / "d.npy" and e[0].label == tmp_path / "sub" / "m.npy"
    assert e[1].data == tmp_path / "elsewhere" / "d.npy"
    assert e[1].label == tmp_path / "home" / "m.npy"
    assert e[2].label is None
    with pytest.raises(DataError, match="needs DATA<TAB>LABEL"):
        read_split(split, require_labels=True)


def test_normalisation_is_pure_and_invertible():
    x = np.random.default_rng(0).normal(0, 10, size=(5, 20, 7)).astype(np.float32)
    x_copy = x.copy()
    y = normalize_seismic(x, SPEC)
    assert np.array_equal(x, x_copy), "normalisation must not modify its input"
    np.testing.assert_allclose(denormalize_seismic(y, SPEC), x, rtol=1e-4, atol=1e-4)
    assert normalize_seismic(np.float32(SPEC.data_max), SPEC) == pytest.approx(1.0)
    assert normalize_seismic(np.float32(SPEC.data_min), SPEC) == pytest.approx(-1.0)
    v = torch.tensor([1500.0, 3000.0, 4500.0])
    assert normalize_velocity(v, SPEC).tolist() == [-1.0, 0.0, 1.0]
    assert denormalize_velocity(normalize_velocity(v, SPEC), SPEC).tolist() == v.tolist()


def test_dataset_reads_lazily_and_normalises(tiny_split: Path):
    ds = OpenFWIDataset(tiny_split, SPEC)
    assert len(ds) == 5
    x, y = ds[4]  # second file, second sample
    assert x.dtype == torch.float32 and x.shape == (5, 1000, 70)
    assert y.dtype == torch.float32 and y.shape == (1, 70, 70)
    raw = np.load(tiny_split.parent / "model" / "model1.npy")[1]
    np.testing.assert_allclose(y.numpy(), (raw - 1500) / 1500 - 1, atol=1e-6)
    assert isinstance(ds._open(0)[0], np.memmap), "files must be memory-mapped, not read"


def test_two_passes_over_preloaded_dataset_are_identical(tiny_split: Path):
    ds = OpenFWIDataset(tiny_split, SPEC, preload=True)
    passes = []
    for _ in range(2):
        loader = DataLoader(ds, batch_size=2, shuffle=False, num_workers=0)
        passes.append([torch.cat([b[1].flatten() for b in loader])])
    assert torch.equal(passes[0][0], passes[1][0])
    assert float(passes[0][0].min()) >= -1.0 and float(passes[0][0].max()) <= 1.0


def test_dataset_works_with_worker_processes(tiny_split: Path):
    ds = OpenFWIDataset(tiny_split, SPEC)
    loader = DataLoader(ds, batch_size=5, num_workers=2)
    (x, y), = list(loader)
    assert x.shape == (5, 5, 1000, 70) and torch.equal(y, torch.stack([ds[i][1] for i in range(5)]))


def test_unlabeled_split_gives_seismic_only(tmp_path: Path, tiny_split: Path):
    one = tmp_path / "predict.txt"
    one.write_text("data/data0.npy\n")
    ds = OpenFWIDataset(one, SPEC)
    assert len(ds) == 3 and ds[0].shape == (5, 1000, 70)


def _expect(split: Path, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern) as info:
        OpenFWIDataset(split, SPEC)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path, tiny_split: Path):
    os.remove(tmp_path / "model" / "model1.npy")
    _expect(tiny_split, r"model1\.npy: file not found")


def test_count_mismatch(tmp_path: Path, tiny_split: Path):
    np.save(tmp_path / "model" / "model1.npy", np.full((4, 1, 70, 70), 2000, np.float32))
    _expect(tiny_split, "holds 2 samples but .*model1.npy holds 4")


def test_wrong_shape_and_dtype(tmp_path: Path, tiny_split: Path):
    np.save(tmp_path / "data" / "data0.npy", np.zeros((3, 5, 999, 70), np.float32))
    _expect(tiny_split, r"shape \(3, 5, 999, 70\); expected \(N, 5, 1000, 70\)")
    np.save(tmp_path / "data" / "data0.npy", np.zeros((3, 5, 1000, 70), np.int16))
    _expect(tiny_split, "dtype int16")


def test_nan_names_file_and_sample(tmp_path: Path, tiny_split: Path):
    m = np.load(tmp_path / "model" / "model0.npy")
    m[2, 0, 5, 5] = np.nan
    np.save(tmp_path / "model" / "model0.npy", m)
    ds = OpenFWIDataset(tiny_split, SPEC)
    with pytest.raises(DataError, match=r"model0\.npy: sample 2 contains NaN"):
        ds[2]


def test_empty_split_truncated_and_non_npy(tmp_path: Path, tiny_split: Path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    _expect(empty, "split file is empty")
    path = tmp_path / "data" / "data1.npy"
    path.write_bytes(path.read_bytes()[:-1000])
    _expect(tiny_split, "truncated .npy file")
    path.write_text("this is not numpy")
    _expect(tiny_split, "not a valid .npy file")


def test_split_with_byte_order_mark_and_atomic_write_split(tmp_path: Path, tiny_split: Path):
    text = tiny_split.read_text()
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert [e.data for e in read_split(bom)] == [e.data for e in read_split(tiny_split)]
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):  # the target is a folder: nothing half-written stays behind
        write_split(tmp_path / "taken", read_split(tiny_split))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(("card", "needle"), [
    ({"normalization": 5}, "'normalization' must be an object"),
    ({"normalization": None}, "'normalization' must be an object"),
    ({"data_min": -1.0, "data_max": float("inf")}, "finite"),
    ({"data_min": -1.0, "data_max": 1.0, "label_max": float("nan")}, "finite"),
    ({"data_min": -1.0, "data_max": 1.0, "seismic_shape": [5, 0, 70]}, "seismic_shape"),
])
def test_malformed_cards_are_config_errors(tmp_path: Path, card: dict, needle: str):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(card))
    with pytest.raises(ConfigError, match=needle):
        get_dataset(str(path))


def test_toml_dataset_that_is_not_a_table(tmp_path: Path):
    path = tmp_path / "ds.toml"
    path.write_text("[datasets]\nfoo = 3\n")
    with pytest.raises(ConfigError, match="datasets.foo must be a table"):
        get_dataset(f"{path}#foo")
