"""``velocitygan generate`` / ``simulate``: files, determinism across workers, resume, bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from velocitygan.cli import main
from velocitygan.data import OpenFWIDataset, get_dataset, read_split
from velocitygan.errors import ConfigError
from velocitygan.physics import forward_model
from velocitygan.synth import make_velocity_maps, shard_layout

GEN = ["generate", "--family", "curvefault-b", "--samples", "5", "--shard-size", "2",
       "--seed", "7", "-q"]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "ds"
    assert main([*GEN, "--out", str(out), "--workers", "1", "--val-fraction", "0.4"]) == 0
    return out


def test_layout_card_and_dataset(made: Path):
    shapes = [np.load(made / "data" / f"data{k}.npy", mmap_mode="r").shape for k in range(3)]
    assert shapes == [(2, 5, 1000, 70), (1, 5, 1000, 70), (2, 5, 1000, 70)]  # 3 train, 2 val
    labels = np.concatenate([np.load(made / "model" / f"model{k}.npy") for k in range(3)])
    np.testing.assert_array_equal(labels[:, 0], make_velocity_maps("curvefault-b", 5, seed=7))
    assert (made / "train.txt").read_text().splitlines() == [
        "data/data0.npy\tmodel/model0.npy", "data/data1.npy\tmodel/model1.npy"]
    assert len(read_split(made / "val.txt")) == 1
    card = json.loads((made / "dataset.json").read_text())
    assert card["family"] == "curvefault-b" and card["seed"] == 7
    assert card["backend"] == "torch"  # auto: OpenFWI's recipe on every device
    assert card["samples"] == {"total": 5, "train": 3, "val": 2}  # round(0.4 x 5) = 2
    assert [s["split"] for s in card["shards"]] == ["train", "train", "val"]
    assert card["shard_size"] == 2
    assert card["acquisition"]["src_x"] == [0, 17, 34, 52, 69]
    spec = get_dataset(str(made / "dataset.json"))
    data = np.concatenate([np.load(made / "data" / f"data{k}.npy") for k in range(3)])
    assert spec.data_min == float(data.min())  # exact: bounds are taken on the fly
    assert spec.data_max == float(data.max())
    assert spec.label_min == 1500 and spec.label_max == 4500
    ds = OpenFWIDataset(made / "val.txt", spec)
    x, y = ds[0]
    assert x.shape == (5, 1000, 70) and y.shape == (1, 70, 70)
    # the data are the forward operator's output for these maps
    np.testing.assert_allclose(ds.raw(0)[0], forward_model(labels[3]).numpy()[0], atol=1e-4)


def test_byte_identical_with_two_workers(made: Path, tmp_path: Path):
    out = tmp_path / "ds"  # same folder name: the card's default name is the folder name
    assert main([*GEN, "--out", str(out), "--workers", "2", "--val-fraction", "0.4"]) == 0
    assert _files(out) == _files(made)


def test_resume_keeps_finished_shards(made: Path, tmp_path: Path):
    out = tmp_path / "ds"
    out.mkdir()
    for name, blob in _files(made).items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(blob)
    (out / "data" / "data1.npy").unlink()  # interrupted: shard 1 missing, a stray temp file
    (out / "data" / ".data1.npy.123.tmp").write_bytes(b"partial")
    (out / "dataset.json").unlink()
    kept = {k: (out / "data" / f"data{k}.npy").stat().st_mtime_ns for k in (0, 2)}
    assert main([*GEN, "--out", str(out), "--workers", "1", "--val-fraction", "0.4"]) == 0
    assert {k: (out / "data" / f"data{k}.npy").stat().st_mtime_ns for k in (0, 2)} == kept
    assert _files(out) == _files(made)


def test_different_plan_needs_overwrite(made: Path, capsys):
    args = [*GEN[:-3], "--seed", "8", "--out", str(made), "--workers", "1", "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a different dataset" in err
    assert "--overwrite" in err


def test_split_rule():
    # the shards follow the split: the last round(F x samples) samples, in shards of their own
    assert shard_layout(24, 500, 0.34) == [(0, 16, "train"), (16, 24, "val")]
    assert shard_layout(5, 2, 0.4) == [(0, 2, "train"), (2, 3, "train"), (3, 5, "val")]
    assert shard_layout(10, 3, 0.25) == [(0, 3, "train"), (3, 6, "train"), (6, 7, "train"),
                                         (7, 10, "val")]  # 2.5 rounds half up
    assert shard_layout(5, 2, 0.0) == [(0, 2, "train"), (2, 4, "train"), (4, 5, "train")]
    assert shard_layout(1000, 100, 0.1)[-2:] == [(800, 900, "train"), (900, 1000, "val")]
    # no fraction given: 10 %, none where that rounds to no sample
    assert shard_layout(20, 500) == [(0, 18, "train"), (18, 20, "val")]
    assert shard_layout(4, 500) == [(0, 4, "train")]
    for n in range(1, 31):
        for size in (1, 2, 3, 7, 500):
            for fraction in (0.05, 0.1, 0.34, 0.5, 0.9):
                try:
                    layout = shard_layout(n, size, fraction)
                except ConfigError:
                    assert int(fraction * n + 0.5) in (0, n)  # impossible requests only
                    continue
                assert [a for a, _, _ in layout[1:]] == [b for _, b, _ in layout[:-1]]
                assert layout[0][0] == 0 and layout[-1][1] == n
                assert all(0 < b - a <= size for a, b, _ in layout)
                val = sum(b - a for a, b, split in layout if split == "val")
                assert 0 < val < n and abs(val - fraction * n) <= 0.5 + 1e-9
                splits = [split for _, _, split in layout]
                assert splits == sorted(splits, key=["train", "val"].index)


@pytest.mark.parametrize("n, fraction, message", [
    (4, 0.1, "val fraction 0.1 of 4 samples rounds to no validation sample; use at least 0.125"),
    (2, 0.9, "val fraction 0.9 of 2 samples leaves no training sample; use less than 0.75"),
    (5, 1.0, r"val fraction must be in \[0, 1\), got 1.0"),
    (5, -0.1, r"val fraction must be in \[0, 1\), got -0.1"),
])
def test_impossible_split_is_one_line_before_simulating(tmp_path: Path, capsys, n, fraction,
                                                        message):
    with pytest.raises(ConfigError, match=message):
        shard_layout(n, 500, fraction)
    out = tmp_path / "g"
    args = ["generate", "--family", "flatvel-a", "--samples", str(n), "--val-fraction",
            str(fraction), "--workers", "1", "--device", "cpu", "--out", str(out), "-q"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: val fraction") and err.count("\n") == 1
    assert not out.exists()


def test_val_fraction_splits_within_the_default_shard_and_resumes(tmp_path: Path, capsys):
    out = tmp_path / "g"
    args = ["generate", "--family", "flatvel-a", "--samples", "6", "--val-fraction", "0.34",
            "--workers", "1", "--device", "cpu", "--out", str(out), "-q"]
    assert main(args) == 0  # default shard size 500: the split cuts the one shard in two
    assert "(4 training, 2 validation samples)" in capsys.readouterr().out
    assert (out / "train.txt").read_text() == "data/data0.npy\tmodel/model0.npy\n"
    assert (out / "val.txt").read_text() == "data/data1.npy\tmodel/model1.npy\n"
    labels = [np.load(out / "model" / f"model{k}.npy")[:, 0] for k in (0, 1)]
    np.testing.assert_array_equal(np.concatenate(labels), make_velocity_maps("flatvel-a", 6))
    card = json.loads((out / "dataset.json").read_text())
    assert card["samples"] == {"total": 6, "train": 4, "val": 2}
    assert card["splits"] == {"train": "train.txt", "val": "val.txt"}
    # interrupted before the validation shard: the rerun keeps the training shard
    before = _files(out)
    kept = (out / "data" / "data0.npy").stat().st_mtime_ns
    (out / "data" / "data1.npy").unlink()
    (out / "dataset.json").unlink()
    assert main(args) == 0
    assert (out / "data" / "data0.npy").stat().st_mtime_ns == kept
    assert _files(out) == before
    # another split is another shard layout: refused unless --overwrite
    args[args.index("0.34")] = "0.5"
    assert main(args) == 2
    assert "differs in val_samples" in capsys.readouterr().err


@pytest.mark.parametrize("shape", [(70, 70), (2, 70, 70), (2, 1, 70, 70)])
def test_simulate_shapes(tmp_path: Path, shape):
    maps = make_velocity_maps("flatvel-a", 2, seed=1)
    v = maps[0] if len(shape) == 2 else maps.reshape(shape)
    np.save(tmp_path / "v.npy", v)
    out = tmp_path / "d.npy"
    assert main(["simulate", "-v", str(tmp_path / "v.npy"), "-o", str(out), "-q",
                 "--workers", "1", "--batch-size", "1"]) == 0
    data = np.load(out)
    assert data.shape == (len(v) if len(shape) > 2 else 1, 5, 1000, 70)
    np.testing.assert_array_equal(data, forward_model(v).numpy())


def test_from_model_raw_xz(tmp_path: Path, capsys):
    z, x = np.mgrid[0:160, 0:300]  # 5 m cells -> 80 x 150 cells at 10 m
    model = (1600 + 18 * z + 2 * x).astype(np.float32)  # reaches ~4.9 km/s: clipped
    model.T.astype("<f4").tofile(tmp_path / "m.bin")  # x-major storage
    out = tmp_path / "pm"
    assert main(["generate", "--from-model", str(tmp_path / "m.bin"), "--dx", "5",
                 "--shape", "160,300", "--axis-order", "xz", "--stride", "35", "--out", str(out),
                 "--workers", "1", "-q"]) == 0
    assert "clipped" in capsys.readouterr().err
    labels = np.load(out / "model" / "model0.npy")[:, 0]
    assert labels.shape == (3, 70, 70)  # corners x = 0, 35, 70 at z = 0
    coarse = model.reshape(80, 2, 150, 2).mean(axis=(1, 3))  # area resampling to 10 m
    np.testing.assert_allclose(labels[1], np.clip(coarse[:70, 35:105], 1500, 4500), rtol=1e-5)
    card = json.loads((out / "dataset.json").read_text())
    assert card["source"]["kind"] == "from-model" and card["source"]["clipped_fraction"] > 0


@pytest.mark.parametrize("args, message", [
    (["generate", "--from-model", "nope.npy", "--dx", "10"], "not found"),
    (["generate", "--from-model", "m.bin", "--dx", "10", "--shape", "70,71"], "check --shape"),
    (["generate", "--from-model", "nan.npy", "--dx", "10"], "NaN"),
    (["generate", "--from-model", "m.bin", "--dx", "10"], "needs --shape"),
    (["generate", "--family", "flatvel-a"], "--samples"),
    (["generate", "--family", "flatvel-z", "--samples", "2"], "unknown family"),
    (["generate", "--family", "flatvel-a", "--samples", "2", "--param", "layers=3"],
     "unknown parameter"),
    (["generate", "--family", "flatvel-a", "--samples", "2", "--seed", "-1"], "seed"),
    (["generate", "--family", "flatvel-a", "--samples", "2", "--param", "n_layers=5"],
     "n_layers = 5 should be a pair"),
    (["generate", "--family", "flatvel-a", "--samples", "2", "--param", "n_layers=[8,3]"],
     "low <= high"),
    (["generate", "--family", "style-a", "--samples", "2", "--param",
      "correlation_cells=[0,0]"], "correlation_cells"),
    (["generate", "--family", "flatvel-a", "--samples", "2", "--dx", "10"], "only apply"),
    (["generate", "--from-model", "m.bin", "--shape", "70,70", "--dx", "inf"], "--dx"),
    (["generate", "--from-model", "fts.npy", "--dx", "10"], "ft/s"),
    (["generate", "--from-model", "text.npy", "--dx", "10"], "holds <U"),
    (["generate", "--from-model", "be.bin", "--shape", "70,70", "--dx", "10"], "byte order"),
    (["simulate", "-v", "nan.npy"], "NaN"),
    (["simulate", "-v", "small.npy"], "shape"),
    (["simulate", "-v", "missing.npy"], "not found"),
])
def test_bad_input_one_line(tmp_path: Path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    np.full((70, 70), 2000, "<f4").tofile("m.bin")
    nan = np.full((80, 80), 2000, np.float32)
    nan[3, 4] = np.nan
    np.save("nan.npy", nan[:70, :70] if args[0] == "simulate" else nan)
    np.save("small.npy", np.full((60, 70), 2000, np.float32))
    np.save("fts.npy", np.linspace(4900, 9800, 80 * 80, dtype=np.float32).reshape(80, 80))
    np.save("text.npy", np.array([["a"] * 80] * 80))
    np.full((70, 70), 2000, ">f4").tofile("be.bin")  # big-endian: read as ~1e-41
    out = ["-o", "out.npy"] if args[0] == "simulate" else ["--out", "out"]
    assert main([*args, *out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert not Path("out").exists() or not any(Path("out").rglob("*.npy"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_torch_backend_matches_cpu(tmp_path: Path):
    from velocitygan.synth import generate_dataset

    card = generate_dataset(tmp_path / "g", "flatfault-a", 3, shard_size=3, device="cuda",
                            backend="torch", progress=False)
    gpu = np.load(card.parent / "data" / "data0.npy")
    cpu = forward_model(make_velocity_maps("flatfault-a", 3, seed=0)).numpy()
    assert np.linalg.norm(gpu - cpu) / np.linalg.norm(cpu) < 5e-3


def test_auto_backend_is_the_exact_recipe_on_every_device(monkeypatch):
    from velocitygan.synth.simulate import resolve_sim_config

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_sim_config("auto", "cuda").backend == "torch"
    assert resolve_sim_config("deepwave", "cuda").backend == "deepwave"
    assert resolve_sim_config("auto", "cpu").backend == "torch"
    assert resolve_sim_config("deepwave", "cpu").backend == "deepwave"
    with pytest.raises(ConfigError, match="unknown physics backend 'fdtd'"):
        resolve_sim_config("fdtd", "cpu")


def test_maps_made_by_processes_are_the_same():
    import threading

    from velocitygan.synth.generate import FamilySource, _chunks

    source = FamilySource("style-a", 7, seed=3)
    todo = [(0, 0, 4), (1, 4, 7)]
    serial = list(_chunks(todo, source, 3))
    parallel = list(_chunks(todo, source, 3, processes=2))
    assert [key[:2] for key, _ in serial] == [(0, 0), (0, 3), (1, 4)]
    assert [key[:2] for key, _ in parallel] == [key[:2] for key, _ in serial]
    for (_, a), (_, b) in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
    threads = threading.active_count()
    for processes in (0, 2):  # one background thread, or processes
        stopped = _chunks([(0, 0, 400)], source, 4, processes=processes)  # 100 chunks planned
        next(stopped)
        t0 = time.perf_counter()
        stopped.close()  # queued maps are dropped, not made
        assert time.perf_counter() - t0 < 5
    assert threading.active_count() == threads  # the map thread has ended


def test_map_processes_only_on_a_gpu_with_cores_to_spare(monkeypatch):
    from velocitygan.synth import generate as gen
    from velocitygan.synth.patches import PatchSource
    from velocitygan.synth.simulate import SimConfig

    source = gen.FamilySource("flatvel-a", 10)
    gpu = SimConfig("torch", "cuda", 256, 1)
    monkeypatch.setattr(gen, "cpu_count", lambda: 16)
    assert gen.map_processes(source, gpu) == 8
    assert gen.map_processes(source, SimConfig("torch", "cpu", 4, 1)) == 0
    assert gen.map_processes(PatchSource(np.zeros((3, 70, 70)), {}), gpu) == 0
    monkeypatch.setattr(gen, "cpu_count", lambda: 2)
    assert gen.map_processes(source, gpu) == 0


def test_failed_shard_sync_is_one_line_and_leaves_no_shard(tmp_path: Path, monkeypatch,
                                                            capsys):
    from velocitygan.synth import generate as gen

    def broken(path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(gen, "fsync_path", broken)
    out = tmp_path / "g"
    args = ["generate", "--family", "flatvel-a", "--samples", "2", "--shard-size", "1",
            "--workers", "1", "--device", "cpu", "--out", str(out), "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: [Errno 28] No space left on device") and err.count("\n") == 1
    assert not list((out / "data").iterdir())  # no shard, no temporary file


def test_byte_identical_with_map_processes(made: Path, tmp_path: Path, monkeypatch):
    from velocitygan.synth import generate as gen

    monkeypatch.setattr(gen, "map_processes", lambda source, cfg: 2)  # as on a GPU host
    out = tmp_path / "ds"
    assert main([*GEN, "--out", str(out), "--workers", "1", "--val-fraction", "0.4"]) == 0
    assert _files(out) == _files(made)


def test_full_disk_at_shard_creation_is_one_line(tmp_path: Path, monkeypatch, capsys):
    import errno
    import os

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    out = tmp_path / "g"
    args = ["generate", "--family", "flatvel-a", "--samples", "2", "--shard-size", "1",
            "--workers", "1", "--device", "cpu", "--out", str(out), "-q"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: [Errno 28] No space left") and err.count("\n") == 1
    assert not list((out / "data").iterdir())  # no shard, no temporary file


def test_two_runs_on_one_folder_are_refused(tmp_path: Path, capsys):
    from velocitygan.io import exclusive_lock

    out = tmp_path / "g"
    out.mkdir()
    args = ["generate", "--family", "flatvel-a", "--samples", "1", "--workers", "1",
            "--device", "cpu", "--out", str(out), "-q"]
    with exclusive_lock(out / ".lock", "test"):  # as if another run were writing there
        assert main(args) == 2
        assert "another process is writing the dataset in" in capsys.readouterr().err
    assert main(args) == 0


def test_a_waiting_lock_takes_over_when_the_holder_lets_go(tmp_path: Path):
    import threading
    import time

    from velocitygan.io import exclusive_lock

    released = threading.Event()

    def hold():
        with exclusive_lock(tmp_path / ".lock", "test"):
            held.set()
            time.sleep(0.3)
            released.set()

    held = threading.Event()
    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    with exclusive_lock(tmp_path / ".lock", "test", wait=True):  # a study's second process
        assert released.is_set()
    holder.join()


def test_model_with_swapped_axes_is_flagged_before_simulation(tmp_path: Path, capsys):
    z, x = np.mgrid[0:80, 0:80]
    np.save(tmp_path / "m.npy", (1600 + 30 * z).astype(np.float32).T)  # depth along the rows
    assert main(["generate", "--from-model", str(tmp_path / "m.npy"), "--dx", "10",
                 "--shard-size", "0", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "wrong --axis-order?" in err and err.index("warning") < err.index("error")
