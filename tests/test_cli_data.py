"""``velocitygan --help/--version`` and ``velocitygan data check``: messages and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from velocitygan import __version__
from velocitygan.cli import main


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    assert "data" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_data_check_good(tiny_split: Path, capsys):
    assert main(["data", "check", str(tiny_split)]) == 0
    out = capsys.readouterr().out
    assert "samples    5" in out and "files      2" in out and "problems   0" in out
    assert " m/s" in out


def test_data_check_bad_reports_problem_and_fails(tmp_path: Path, tiny_split: Path, capsys):
    m = np.load(tmp_path / "model" / "model1.npy")
    m[1, 0, 0, 0] = np.inf
    np.save(tmp_path / "model" / "model1.npy", m)
    (tmp_path / "data" / "data0.npy").write_bytes(b"garbage")
    assert main(["data", "check", str(tiny_split)]) == 1
    err = capsys.readouterr().err
    assert "data0.npy: not a valid .npy file" in err
    assert "model1.npy: sample 1 contains NaN or Inf" in err


def test_unknown_dataset_is_one_line_error(tiny_split: Path, capsys):
    assert main(["data", "check", str(tiny_split), "--dataset", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown dataset 'nope'") and err.count("\n") == 1


def test_console_script_has_no_traceback(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1] / "src"))
    r = subprocess.run([sys.executable, "-m", "velocitygan", "data", "check",
                        str(tmp_path / "missing.txt")], capture_output=True, text=True, env=env)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "split file not found" in r.stderr


def test_data_check_flags_scaled_and_empty_splits(tmp_path: Path, tiny_split: Path, capsys):
    for k in (0, 1):
        path = tmp_path / "data" / f"data{k}.npy"
        np.save(path, np.load(path) * 1e4)  # e.g. another unit
    assert main(["data", "check", str(tiny_split)]) == 1
    assert "exceed the range" in capsys.readouterr().err
    for k in (0, 1):
        path = tmp_path / "data" / f"data{k}.npy"
        np.save(path, np.load(path) * 1e-8)  # e.g. already normalised
    assert main(["data", "check", str(tiny_split)]) == 1
    assert "already normalised" in capsys.readouterr().err
    np.save(tmp_path / "e.npy", np.zeros((0, 5, 1000, 70), np.float32))
    np.save(tmp_path / "m.npy", np.zeros((0, 1, 70, 70), np.float32))
    (tmp_path / "empty.txt").write_text("e.npy\tm.npy\n")
    assert main(["data", "check", str(tmp_path / "empty.txt")]) == 1
    assert "hold no samples" in capsys.readouterr().err
