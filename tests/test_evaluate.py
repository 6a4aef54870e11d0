"""``velocitygan evaluate``: metrics.json, per_sample.csv and figures on tiny data."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from evalkit import tiny_generator, write_checkpoint, write_dataset

from velocitygan.cli import main
from velocitygan.evaluate import evaluate_checkpoint
from velocitygan.predict import predict


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    split = write_dataset(root, counts=(3, 2))
    ckpt = write_checkpoint(root / "ckpt.pt", tiny_generator())
    return root, split, ckpt


@pytest.fixture(scope="module")
def evaluated(setup) -> tuple[Path, int]:
    root, split, ckpt = setup
    out = root / "ev"
    code = main(["evaluate", "-c", str(ckpt), "--data", str(split), "--out", str(out), "-b", "2",
                 "--save-predictions"])  # fmt: skip
    return out, code


def test_evaluate_writes_metrics_table_and_figures(evaluated, setup) -> None:
    out, code = evaluated
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in ("mae", "rmse", "ssim", "mae_mps", "rmse_mps", "samples", "checkpoint", "dataset"):
        assert key in m, key
    assert m["samples"] == 5 and m["dataset"] == "flatvel-a"
    assert m["mae_mps"] == pytest.approx(m["mae"] * 1500)
    assert m["rmse_mps"] == pytest.approx(m["rmse"] * 1500)
    with open(out / "per_sample.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["index"] for r in rows] == ["0", "1", "2", "3", "4"]
    assert [(r["file"], r["index_in_file"]) for r in rows][2:4] == [("data0.npy", "2"),
                                                                    ("data1.npy", "0")]
    # Equal pixel counts: global MAE = mean of per-sample MAE, global MSE = mean of RMSE^2.
    assert np.mean([float(r["mae"]) for r in rows]) == pytest.approx(m["mae"], rel=1e-5)
    assert math.sqrt(np.mean([float(r["rmse"]) ** 2 for r in rows])) == pytest.approx(
        m["rmse"], rel=1e-5
    )
    assert np.mean([float(r["ssim"]) for r in rows]) == pytest.approx(m["ssim"], rel=1e-5)
    for name in ("best", "median", "worst"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_agrees_with_predict_in_mps(evaluated, setup) -> None:
    out, _ = evaluated
    root, split, ckpt = setup
    pred = predict(ckpt, split, log=lambda m: None)
    true = np.concatenate([np.load(root / "model" / f"model{k}.npy") for k in (0, 1)])
    m = json.loads((out / "metrics.json").read_text())
    assert np.abs(pred - true).mean() == pytest.approx(m["mae_mps"], rel=1e-4)
    np.testing.assert_allclose(np.load(out / "predictions.npy"), pred, atol=0.05)


def test_perturbation_changes_metrics_and_is_recorded(evaluated, setup, tmp_path) -> None:
    out, _ = evaluated
    _, split, ckpt = setup
    r = evaluate_checkpoint(ckpt, split, tmp_path / "noisy", figures=False, batch_size=8,
                            raw_transform=lambda x, i: x * 0 + 30.0)  # fmt: skip
    clean = json.loads((out / "metrics.json").read_text())
    assert r["mae"] != pytest.approx(clean["mae"], rel=1e-3)
    code = main(["evaluate", "-c", str(ckpt), "--data", str(split), "--out",
                 str(tmp_path / "snr"), "--noise-snr", "0", "--no-figures"])  # fmt: skip
    assert code == 0
    m = json.loads((tmp_path / "snr" / "metrics.json").read_text())
    assert m["perturbation"]["noise_snr_db"] == 0 and m["mae"] != pytest.approx(clean["mae"])
    assert not (tmp_path / "snr" / "figures").exists()


def test_evaluate_user_errors_are_one_line(setup, tmp_path, capsys) -> None:
    root, split, ckpt = setup
    unlabeled = tmp_path / "x.txt"
    unlabeled.write_text(f"{root / 'data' / 'data0.npy'}\n")
    bare = write_checkpoint(tmp_path / "bare.pt", tiny_generator(), dataset=None)
    cases = [
        (["-c", str(ckpt), "--data", str(unlabeled)], "labels"),
        (["-c", str(tmp_path / "none.pt"), "--data", str(split)], "not found"),
        (["-c", str(bare), "--data", str(split)], "--dataset"),
        (["-c", str(ckpt), "--data", str(split), "--dataset", "nope"], "unknown dataset"),
    ]
    for args, needle in cases:
        assert main(["evaluate", *args, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and needle in err and "\n" not in err, err
    # A checkpoint without normalisation works once --dataset names it.
    assert main(["evaluate", "-c", str(bare), "--data", str(split), "--dataset", "flatvel-a",
                 "--out", str(tmp_path / "ok"), "--no-figures"]) == 0  # fmt: skip
    # Overriding a checkpoint's normalisation works but says so on one line.
    assert main(["evaluate", "-c", str(ckpt), "--data", str(split), "--dataset", "curvevel-b",
                 "--out", str(tmp_path / "ok2"), "--no-figures"]) == 0  # fmt: skip
    warn = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning:")]
    assert len(warn) == 1 and "curvevel-b" in warn[0] and "flatvel-a" in warn[0]


def test_physics_option_reports_data_misfit(setup, tmp_path) -> None:
    pytest.importorskip("velocitygan.fwi")
    _, _, ckpt = setup
    split = write_dataset(tmp_path, counts=(1,))  # forward modelling costs ~0.1-1 s per sample
    r = evaluate_checkpoint(ckpt, split, tmp_path / "phys", physics=True, figures=False)
    assert np.isfinite(r["data_misfit"]) and r["data_misfit"] > 0
    with open(tmp_path / "phys" / "per_sample.csv") as fh:
        assert "data_misfit" in next(csv.reader(fh))


def test_evaluate_warns_on_scaled_data_and_refuses_an_empty_split(setup, tmp_path, capsys):
    root, _, ckpt = setup
    np.save(tmp_path / "d.npy", np.load(root / "data" / "data0.npy") * 1e3)
    np.save(tmp_path / "m.npy", np.load(root / "model" / "model0.npy"))
    (tmp_path / "big.txt").write_text("d.npy\tm.npy\n")
    assert main(["evaluate", "-c", str(ckpt), "--data", str(tmp_path / "big.txt"), "--out",
                 str(tmp_path / "ev")]) == 0
    assert "warning:" in capsys.readouterr().err
    np.save(tmp_path / "e.npy", np.zeros((0, 5, 1000, 70), np.float32))
    np.save(tmp_path / "em.npy", np.zeros((0, 1, 70, 70), np.float32))
    (tmp_path / "empty.txt").write_text("e.npy\tem.npy\n")
    assert main(["evaluate", "-c", str(ckpt), "--data", str(tmp_path / "empty.txt"), "--out",
                 str(tmp_path / "ev2")]) == 2
    err = capsys.readouterr().err
    assert "no samples" in err and "Traceback" not in err
