"""Robustness and transfer studies, end to end through the CLI on tiny data."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from velocitygan.checkpoint import save_checkpoint
from velocitygan.cli import main
from velocitygan.data import OPENFWI_DATASETS, OpenFWIDataset, SplitEntry, write_split
from velocitygan.models import InversionNet
from velocitygan.study import robustness_conditions, write_subset

WIDTH = 0.125  # 4 .. 64 channels: the full layer layout, fast on CPU


def _gathers(rng: np.random.Generator, v_mps: np.ndarray) -> np.ndarray:
    """Cheap stand-in seismic (n, 5, 1000, 70) whose arrival times depend on the map."""
    n = len(v_mps)
    t = np.arange(1000)[:, None]
    out = np.zeros((n, 5, 1000, 70), np.float32)
    for i in range(n):
        for k, s in enumerate((0, 17, 34, 52, 69)):
            arrival = 73 + np.abs(np.arange(70) - s) * 10_000 / v_mps[i].mean()
            out[i, k] = 30 * np.exp(-(((t - arrival) / 8.0) ** 2))
    return out + rng.normal(0, 0.05, out.shape).astype(np.float32)


def write_tiny_dataset(folder: Path, n_train: int, n_val: int, seed: int, name: str) -> Path:
    """A dataset folder like ``velocitygan generate`` writes (cards, splits, .npy pairs)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("val", n_val)):
        v = np.sort(rng.uniform(1500, 4500, (n, 1, 70, 1)), axis=0).repeat(70, -1)
        v = np.ascontiguousarray(np.broadcast_to(v, (n, 1, 70, 70)), dtype=np.float32)
        np.save(folder / f"{split}_data.npy", _gathers(rng, v))
        np.save(folder / f"{split}_model.npy", v)
        write_split(folder / f"{split}.txt", [SplitEntry(folder / f"{split}_data.npy",
                                                          folder / f"{split}_model.npy")])
    spec = OPENFWI_DATASETS["flatvel-a"]
    card = {"name": name, "data_min": spec.data_min, "data_max": spec.data_max}
    (folder / "dataset.json").write_text(json.dumps(card))
    return folder


def tiny_checkpoint(path: Path, seed: int, split: Path) -> Path:
    """An untrained tiny InversionNet whose BatchNorm statistics come from ``split``'s data,
    so that its eval-mode output varies with the input (as a trained network's does)."""
    torch.manual_seed(seed)
    model = InversionNet(width=WIDTH)
    x = torch.stack([xy[0] for xy in OpenFWIDataset(split, OPENFWI_DATASETS["flatvel-a"])])
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # plain average over the calibration batch
    model.train()
    with torch.no_grad():
        model(x)
    save_checkpoint(path, {
        "model": {"kind": "inversionnet", "generator": dict(model.config), "discriminator": None},
        "dataset": OPENFWI_DATASETS["flatvel-a"].to_dict(), "generator": model.state_dict(),
        "discriminator": None, "optimizers": {}, "epoch": 1, "step": 1, "config": {},
        "metrics": {}, "rng": {},
    })
    return path


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_conditions_are_clean_first_and_seeded():
    conds = robustness_conditions(snr_db=[10, 0], missing_traces=[0.5], missing_shots=[1],
                                  time_shifts=[-3], seed=2)
    assert [c.slug for c in conds] == ["clean", "noise_snr_db-10", "noise_snr_db-0",
                                       "missing_traces-0.5", "missing_shots-1", "time_shift--3"]
    assert conds[0].perturbation.is_identity and conds[1].perturbation.seed == 2


def test_evaluate_cli_with_noise(tmp_path):
    data = write_tiny_dataset(tmp_path / "d", 2, 4, 0, "tiny")
    ckpt = tiny_checkpoint(tmp_path / "m.pt", 0, data / "val.txt")
    base = ["evaluate", "--checkpoint", str(ckpt), "--data", str(data / "val.txt"),
            "--no-figures", "--batch-size", "2"]
    assert main(base + ["--out", str(tmp_path / "clean")]) == 0
    assert main(base + ["--out", str(tmp_path / "noisy"), "--noise-snr", "0",
                        "--missing-traces", "0.2"]) == 0
    clean = json.loads((tmp_path / "clean" / "metrics.json").read_text())
    noisy = json.loads((tmp_path / "noisy" / "metrics.json").read_text())
    assert noisy["perturbation"]["noise_snr_db"] == 0.0
    assert noisy["samples"] == clean["samples"] == 4
    assert noisy["mae"] != clean["mae"]


def test_study_robustness_end_to_end(tmp_path, capsys):
    data = write_tiny_dataset(tmp_path / "d", 2, 4, 1, "tiny")
    a = tiny_checkpoint(tmp_path / "runA" / "best.pt", 0, data / "val.txt")
    b = tiny_checkpoint(tmp_path / "runB" / "best.pt", 1, data / "val.txt")
    out = tmp_path / "rob"
    code = main(["study", "robustness", "--checkpoint", str(a), "--checkpoint", f"second={b}",
                 "--data", str(data / "val.txt"), "--out", str(out), "--snr", "0",
                 "--missing-traces", "", "--missing-shots", "2", "--time-shift", "10",
                 "--batch-size", "4"])
    assert code == 0, capsys.readouterr().err
    rows = _read_csv(out / "robustness.csv")
    assert len(rows) == 2 * 4
    assert {r["model"] for r in rows} == {"inversionnet:runA", "second"}
    clean = [r for r in rows if r["perturbation"] == "clean"]
    assert all(float(r["delta_mae_mps"]) == 0 for r in clean)
    for model in ("inversionnet:runA", "second"):
        mine = {r["label"]: float(r["mae"]) for r in rows if r["model"] == model}
        assert mine["noise 0 dB SNR"] != mine["clean"]
        assert mine["2 shots missing"] != mine["clean"]
    md = (out / "robustness.md").read_text()
    assert "| clean |" in md and "time shift +10 samples" in md and "second MAE m/s" in md
    assert (out / "evals" / "second" / "time_shift-10" / "metrics.json").is_file()


def test_study_robustness_bad_list_is_one_line_error(tmp_path, capsys):
    code = main(["study", "robustness", "--checkpoint", "x.pt", "--data", "v.txt", "--out",
                 str(tmp_path), "--snr", "loud"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: --snr 'loud'") and err.count("\n") == 1


def test_write_subset_takes_first_k_across_files(tmp_path):
    data = write_tiny_dataset(tmp_path / "d", 3, 2, 2, "tiny")
    split = tmp_path / "two.txt"
    entries = [SplitEntry(data / "train_data.npy", data / "train_model.npy"),
               SplitEntry(data / "val_data.npy", data / "val_model.npy")]
    write_split(split, entries)
    sub = write_subset(split, 4, tmp_path / "k4")
    x = np.load(tmp_path / "k4" / "data.npy")
    want = np.concatenate([np.load(data / "train_data.npy"), np.load(data / "val_data.npy")[:1]])
    assert np.array_equal(x, want) and sub.read_text().count("\n") == 1
    with pytest.raises(Exception, match="fewer than K"):
        write_subset(split, 9, tmp_path / "k9")


def test_study_transfer_end_to_end(tmp_path, capsys):
    src = write_tiny_dataset(tmp_path / "src", 4, 2, 3, "tiny-src")
    tgt = write_tiny_dataset(tmp_path / "tgt", 4, 2, 4, "tiny-tgt")
    out = tmp_path / "tr"
    config = tmp_path / "tiny.toml"  # plain fp32: bf16 autocast only slows tiny networks
    config.write_text('[speed]\nbf16 = "false"\nchannels_last = "false"\n'
                      '[run]\ntensorboard = false\n')
    args = ["study", "transfer", "--source", str(src), "--target", str(tgt), "--k", "0,2",
            "--models", "inversionnet", "--out", str(out), "--epochs", "1", "--width",
            str(WIDTH), "--batch-size", "2", "--workers", "0", "--finetune-steps", "2",
            "--freeze", "encoder", "--device", "cpu", "--config", str(config)]
    assert main(args) == 0, capsys.readouterr().err
    rows = _read_csv(out / "transfer.csv")
    kinds = [(r["k"], r["init"], r["evaluated_on"]) for r in rows]
    assert kinds == [("", "source model", "source val"), ("0", "source model", "target val"),
                     ("2", "source model", "target val"), ("2", "scratch", "target val")]
    assert all(r["source"] == "src" and r["target"] == "tgt" for r in rows)
    assert [r["steps"] for r in rows[2:]] == ["2", "2"]
    # fine-tuning started from the source model and kept the encoder fixed
    from velocitygan.checkpoint import load_checkpoint

    src_w = load_checkpoint(out / "runs/inversionnet/source/best.pt")["generator"]
    ft_w = load_checkpoint(out / "runs/inversionnet/finetune-k2/last.pt")["generator"]
    enc = [k for k in src_w if k.startswith("encoder.") and k.endswith("weight")]
    assert enc and all(torch.equal(src_w[k], ft_w[k]) for k in enc)
    md = (out / "transfer.md").read_text()
    assert "| inversionnet | in-domain |" in md and "| inversionnet | 2 |" in md
    # a second run reuses the finished runs and gives the same table
    assert main(args) == 0
    assert _read_csv(out / "transfer.csv") == rows
    assert "reusing finished run" in capsys.readouterr().out
    # ... but not a run made with other settings (here: the encoder not frozen)
    args[args.index("--freeze") + 1] = "none"
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "freeze 'encoder' (there) vs 'none' (now)" in err and "--out" in err


def test_study_transfer_starts_from_a_given_checkpoint(tmp_path, capsys):
    src = write_tiny_dataset(tmp_path / "src", 4, 2, 3, "tiny-src")
    tgt = write_tiny_dataset(tmp_path / "tgt", 4, 2, 4, "tiny-tgt")
    ckpt = tiny_checkpoint(tmp_path / "given.pt", 7, src / "train.txt")
    out = tmp_path / "tr"
    config = tmp_path / "tiny.toml"
    config.write_text('[speed]\nbf16 = "false"\nchannels_last = "false"\n'
                      '[run]\ntensorboard = false\n')
    args = ["study", "transfer", "--source", str(src), "--target", str(tgt), "--k", "0,2",
            "--models", "inversionnet", "--out", str(out), "--width", str(WIDTH),
            "--batch-size", "2", "--workers", "0", "--finetune-steps", "2", "--no-scratch",
            "--freeze", "encoder", "--device", "cpu", "--config", str(config),
            "--source-checkpoint", f"inversionnet={ckpt}"]
    assert main(args) == 0, capsys.readouterr().err
    rows = _read_csv(out / "transfer.csv")
    assert [(r["k"], r["init"]) for r in rows] == [("", "source model"), ("0", "source model"),
                                                   ("2", "source model")]
    assert rows[0]["checkpoint"] == str(ckpt) and rows[0]["train_samples"] == "given"
    assert not (out / "runs/inversionnet/source").exists()  # nothing trained on the source
    from velocitygan.checkpoint import load_checkpoint

    given = load_checkpoint(ckpt)["generator"]
    tuned = load_checkpoint(out / "runs/inversionnet/finetune-k2/last.pt")["generator"]
    enc = [k for k in given if k.startswith("encoder.") and k.endswith("weight")]
    assert enc and all(torch.equal(given[k], tuned[k]) for k in enc)
    assert f"inversionnet from {ckpt}" in (out / "transfer.md").read_text()
    # a checkpoint of a model not studied, of another model or of another width, and a
    # malformed flag, are one-line errors before any work starts
    capsys.readouterr()
    for flag, words in ((f"velocitygan={ckpt}", "velocitygan, which this study does not run"),
                        ("inversionnet", "give MODEL=CKPT once per model")):
        assert main([*args[:-1], flag]) == 2
        err = capsys.readouterr().err.strip()
        assert words in err and "\n" not in err
    wide = [*args, "--out", str(tmp_path / "wide")]
    wide[wide.index("--width") + 1] = "0.25"
    assert main(wide) == 2
    err = capsys.readouterr().err.strip()
    assert "has width 0.125, the study's runs 0.25; pass --width 0.125" in err
    assert not (tmp_path / "wide" / "data" / "target").exists()
    bare = load_checkpoint(ckpt)
    del bare["dataset"]
    save_checkpoint(tmp_path / "bare.pt", bare)
    assert main([*args[:-1], f"inversionnet={tmp_path / 'bare.pt'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert "records no dataset normalisation" in err and "\n" not in err


def test_study_robustness_checks_first_and_reuses_finished_evaluations(tmp_path, capsys):
    data = write_tiny_dataset(tmp_path / "d", 2, 4, 1, "tiny")
    a = tiny_checkpoint(tmp_path / "runA" / "best.pt", 0, data / "val.txt")
    out = tmp_path / "rob"
    base = ["study", "robustness", "--checkpoint", str(a), "--data", str(data / "val.txt"),
            "--out", str(out), "--batch-size", "4", "--snr", "0", "--missing-traces", "",
            "--missing-shots", "", "--time-shift", ""]
    assert main(base + ["--missing-shots", "1,9"]) == 2  # 9 > 5 shots: before any evaluation
    assert "missing shots 9" in capsys.readouterr().err and not out.exists()
    assert main(base + ["--time-shift", "0"]) == 2
    assert "leaves the data unchanged" in capsys.readouterr().err
    assert main(base) == 0
    first = _read_csv(out / "robustness.csv")
    capsys.readouterr()
    assert main(base + ["--missing-traces", "0.12,0.125"]) == 0
    captured = capsys.readouterr()
    assert (captured.out + captured.err).count("kept from an earlier run") == 2
    rows = _read_csv(out / "robustness.csv")
    assert rows[:2] == first and len(rows) == 4
    md = (out / "robustness.md").read_text()
    assert "| 12% traces missing |" in md and "| 12.5% traces missing |" in md
    # a checkpoint rewritten at the same path (training went on) is evaluated afresh
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 10**9))
    capsys.readouterr()
    assert main(base) == 0
    captured = capsys.readouterr()
    assert "kept from an earlier run" not in captured.out + captured.err


def test_transfer_compares_stored_run_paths_by_file(tmp_path, monkeypatch):
    from velocitygan.train.run import run_settings

    def run(out: str, train: str, dataset: str = "flatvel-a", freeze: str = "none") -> dict:
        return run_settings({"out": out, "train": train, "dataset": dataset, "freeze": freeze,
                             "progress": out})  # session settings do not count

    monkeypatch.chdir(tmp_path)
    now = run(str(tmp_path / "runs" / "a"), str(tmp_path / "d" / "train.txt"))
    assert run("runs/a", "d/train.txt") == now  # stored relative by older versions
    assert run("runs/a", "d/other.txt") != now
    assert run("/moved/study/runs/a", "/moved/study/d/train.txt") == now  # a moved study folder
    assert run("runs/a", "d/train.txt", dataset="curvevel-a") != now
    assert run("runs/a", "d/train.txt", freeze="encoder") != now
