"""End to end: ``velocitygan fwi`` and ``velocitygan invert`` on tiny data in tmp_path."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from evalkit import ctrl_c_at_call

from velocitygan.checkpoint import save_checkpoint
from velocitygan.cli import main
from velocitygan.data import get_dataset
from velocitygan.models import InversionNet
from velocitygan.physics import Acquisition, forward_model

TINY = Acquisition(nz=20, nx=20, nt=250, src_x=(0, 10, 19), rec_x=tuple(range(20)), pad_cells=20)


def _layered(n: int, nz: int, nx: int) -> np.ndarray:
    v = np.full((n, 1, nz, nx), 2000.0, np.float32)
    v[:, :, nz * 2 // 5 :] = 2600.0
    v[:, :, nz * 3 // 4 :] = 3200.0
    v[1:, :, 4:7] += 120.0
    return v


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fwi")
    v = _layered(3, TINY.nz, TINY.nx)
    np.save(d / "model.npy", v)
    np.save(d / "data.npy", forward_model(v, TINY).numpy())
    (d / "dataset.json").write_text(json.dumps({"acquisition": TINY.to_dict()}))
    return d


def test_fwi_command_writes_outputs(tiny_files, tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["fwi", "--data", str(tiny_files / "data.npy"), "--sample", "1:3",
               "--true", str(tiny_files / "model.npy"), "--acquisition",
               str(tiny_files / "dataset.json"), "--iterations", "4", "--freqs", "10,full",
               "--out", str(out)])  # fmt: skip
    assert rc == 0
    v = np.load(out / "velocity.npy")
    assert v.shape == (2, 1, 20, 20) and v.dtype == np.float32
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [r["iteration"] for r in rows] == ["1", "2", "3", "4"]
    assert all(float(r["mae_mps"]) > 0 and float(r["misfit"]) > 0 for r in rows)
    summary = json.loads((out / "fwi.json").read_text())
    assert summary["samples"] == [1, 2]
    assert summary["final_misfit"][0] < summary["start_misfit"][0]
    assert (out / "history.png").stat().st_size > 0
    assert (out / "velocity_sample1.png").stat().st_size > 0
    assert "MAE" in capsys.readouterr().out
    assert not (out / "fwi_state.pt").exists()  # removed once the outputs are written


def test_fwi_command_resume_rules(tiny_files, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    args = ["fwi", "--data", str(tiny_files / "data.npy"), "--acquisition",
            str(tiny_files / "dataset.json"), "--iterations", "3", "--no-figures", "--out",
            str(out)]
    assert main([*args, "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err
    ctrl_c_at_call(monkeypatch, 3)
    assert main(args) == 130
    assert "--resume" in capsys.readouterr().err and (out / "fwi_state.pt").is_file()
    assert main(args) == 2  # a fresh start would silently drop the saved progress
    assert "interrupted run" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0
    assert (out / "velocity.npy").is_file() and not (out / "fwi_state.pt").exists()
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [r["iteration"] for r in rows] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        ([], "acquisition expects"),  # default (OpenFWI) acquisition vs tiny data
        (["--acquisition", "{acq}", "--init", "smooth"], "--init smooth"),
        (["--acquisition", "{acq}", "--sample", "7"], "samples 0..2"),
        (["--acquisition", "{acq}", "--freqs", "5,x"], "bad frequency"),
        (["--acquisition", "{acq}", "--true", "{true}", "--smooth-sigma", "nan"],
         "--smooth-sigma"),
        (["--acquisition", "{acq}", "--true", "{small}"], "true model has shape"),
        (["--acquisition", "{acq}", "--device", "gpu"], "device"),
        (["--acquisition", "{acq}", "--true", "{true}", "--out", "{true}"], "is a file"),
        (["--acquisition", "{acq}", "--freqs", "10,5"], "from low to high"),
    ],
)
def test_fwi_command_bad_input_exit_2(tiny_files, tmp_path, capsys, extra, text):
    np.save(tmp_path / "small.npy", np.full((3, 1, 12, 12), 2500.0, np.float32))
    extra = [e.format(acq=tiny_files / "dataset.json", true=tiny_files / "model.npy",
                      small=tmp_path / "small.npy") for e in extra]
    rc = main(["fwi", "--data", str(tiny_files / "data.npy"), "--out", str(tmp_path), *extra])
    err = capsys.readouterr().err
    assert rc == 2
    assert text in err and "Traceback" not in err
    assert not (tmp_path / "velocity.npy").exists()


def test_invert_command_predicts_then_refines(tmp_path, capsys):
    acq = Acquisition()
    v = _layered(1, acq.nz, acq.nx)
    np.save(tmp_path / "model.npy", v)
    np.save(tmp_path / "data.npy", forward_model(v, acq).numpy())
    net = InversionNet(width=0.125)
    save_checkpoint(tmp_path / "g.pt", {
        "model": {"kind": "inversionnet", "generator": net.config, "discriminator": None},
        "dataset": get_dataset("flatvel-a").to_dict(), "generator": net.state_dict(),
    })  # fmt: skip
    out = tmp_path / "hyb"
    rc = main(["invert", "--checkpoint", str(tmp_path / "g.pt"), "--data",
               str(tmp_path / "data.npy"), "--true", str(tmp_path / "model.npy"),
               "--refine", "2", "--freqs", "full", "--no-figures", "--out", str(out)])  # fmt: skip
    assert rc == 0, capsys.readouterr().err
    pred, refined = np.load(out / "pred.npy"), np.load(out / "refined.npy")
    assert pred.shape == refined.shape == (1, 1, 70, 70)
    assert not np.array_equal(pred, refined)
    assert len(list(csv.DictReader(open(out / "history.csv")))) == 2
    assert "network MAE" in capsys.readouterr().out
    # settings are checked before the network runs
    rc = main(["invert", "--checkpoint", str(tmp_path / "g.pt"), "--data",
               str(tmp_path / "data.npy"), "--vmax", "9000", "--out", str(tmp_path / "h2")])
    err = capsys.readouterr().err
    assert rc == 2 and "vmax 9000" in err and err.count("\n") == 1
