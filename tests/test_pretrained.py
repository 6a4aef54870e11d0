"""``pretrained:NAME``: the registry, slim bundled checkpoints, and every command that takes
a checkpoint accepting the name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from trainkit import make_tiny_dataset, train_args

import velocitygan.pretrained as pretrained
from velocitygan.checkpoint import slim_checkpoint
from velocitygan.cli import main
from velocitygan.io import write_json


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture()
def bundled(tiny, tmp_path, monkeypatch):
    """A tiny VelocityGAN run packaged as ``pretrained:tiny`` in a weights folder of its own."""
    run = tmp_path / "run"
    assert main(train_args(tiny, run, "--epochs", "1")) == 0
    weights = tmp_path / "weights"
    size = slim_checkpoint(run / "last.pt", weights / "tiny.pt")
    assert size < (run / "last.pt").stat().st_size / 2  # no optimiser state
    write_json(weights / "tiny.json", {
        "name": "tiny", "file": "tiny.pt", "model": "velocitygan", "family": "tiny",
        "width": 0.0625, "test": {"samples": 8, "mae_mps": 1.0, "rmse_mps": 2.0, "ssim": 0.5},
        "date": "2026-12-03", "velocitygan_version": "0", "remake": "make it"})
    monkeypatch.setattr(pretrained, "_weights_dir", lambda: weights)
    return run


def test_pretrained_name_works_wherever_a_checkpoint_is_read(bundled, tiny, tmp_path, capsys):
    assert main(["pretrained"]) == 0
    assert "pretrained:tiny" in capsys.readouterr().out
    x = np.load(tiny["val"].parent / "val_data.npy")[:2]
    np.save(tmp_path / "x.npy", x)
    for ckpt in ("pretrained:tiny", str(bundled / "last.pt")):
        out = tmp_path / f"{ckpt[-4:]}.npy"
        assert main(["predict", "-c", ckpt, "--input", str(tmp_path / "x.npy"),
                     "--out", str(out)]) == 0
    # the slim file predicts what the training checkpoint predicts
    a, b = np.load(tmp_path / "tiny.npy"), np.load(tmp_path / "t.pt.npy")
    assert a.shape == (2, 1, 70, 70) and np.abs(a - b).max() < 1e-3
    assert main(["evaluate", "-c", "pretrained:tiny", "--data", str(tiny["val"]),
                 "--out", str(tmp_path / "eval")]) == 0
    ft = tmp_path / "ft"
    assert main(train_args(tiny, ft, "--epochs", "1", "--init-from", "pretrained:tiny")) == 0
    assert (ft / "last.pt").is_file()


def test_unknown_pretrained_name_is_one_line(bundled, tiny, tmp_path, capsys):
    x = tmp_path / "x.npy"
    np.save(x, np.load(tiny["val"].parent / "val_data.npy")[:1])
    assert main(["predict", "-c", "pretrained:nope", "--input", str(x),
                 "--out", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pretrained:tiny" in err  # names the known ones


BUNDLED = ("flatvel-a", "curvefault-a")


def test_bundled_models_fit_the_package_and_predict():
    cards = pretrained.list_pretrained()
    assert {card["name"] for card in cards} >= set(BUNDLED)
    for card in cards:
        path = pretrained.resolve_checkpoint("pretrained:" + card["name"])
        assert path.stat().st_size <= 15 * 2**20
        assert card["test"]["samples"] >= 500 and card["remake"]
        from velocitygan.checkpoint import load_checkpoint
        from velocitygan.predict import load_model

        cfg = load_checkpoint(path)["config"]
        assert not any(cfg[k] for k in ("train", "val", "out", "dataset"))  # no local paths
        loaded = load_model("pretrained:" + card["name"])
        with torch.no_grad():
            y = loaded.model(torch.zeros(1, 5, 1000, 70))
        assert y.shape == (1, 1, 70, 70)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_inverts_what_generate_makes(tmp_path, name):
    """The weights match the default physics: on maps that ``generate`` makes here with the
    card's test seed, the error is the card's test MAE, give or take sampling noise."""
    from velocitygan.evaluate import evaluate_checkpoint
    from velocitygan.synth import generate_dataset

    card = pretrained.model_card(name)
    generate_dataset(tmp_path / "d", card["family"], 8, seed=card["data"]["test_seed"],
                     val_fraction=0.0, workers=1, device="cpu", progress=False)
    m = evaluate_checkpoint(pretrained.resolve_checkpoint("pretrained:" + name),
                            tmp_path / "d" / "train.txt", tmp_path / "eval", figures=False)
    assert m["mae_mps"] < 1.3 * card["test"]["mae_mps"]


def test_broken_model_card_is_one_line(tmp_path, monkeypatch, capsys):
    (tmp_path / "x.pt").write_bytes(b"")
    (tmp_path / "x.json").write_text("{not json")
    monkeypatch.setattr(pretrained, "_weights_dir", lambda: tmp_path)
    assert main(["pretrained"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "x.json" in err
