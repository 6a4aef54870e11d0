"""``velocitygan study benchmark`` end to end on tiny data: table, figure, reuse, refusal."""

from __future__ import annotations

import csv

from velocitygan.cli import main

TINY = ["--set", "width=0.125", "--set", "critic_width=0.125", "--set", "batch_size=4",
        "--set", "workers=0",
        "--set", "log_every_steps=1000"]


def _bench(out, budget: str = "0.02", models: str = "velocitygan,inversionnet") -> int:
    return main(["study", "benchmark", "--family", "flatvel-a", "--budget-min", budget,
                 "--models", models, "--seeds", "0", "--out", str(out),
                 "--train-samples", "12", "--test-samples", "4", *TINY])


def test_benchmark_trains_each_model_for_the_budget_and_scores_the_test_set(tmp_path, capsys):
    out = tmp_path / "bench"
    assert _bench(out) == 0
    with open(out / "benchmark.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["model"] for r in rows] == ["inversionnet", "velocitygan"]
    for r in rows:
        assert int(r["test_samples"]) == 4
        assert float(r["train_s"]) >= 0.02 * 60  # the budget, not less
        assert int(r["samples_seen"]) == 4 * int(r["steps"]) > 0
        assert 0 < float(r["mae_mps"]) < 3000
    assert "test MAE (m/s)" in (out / "benchmark.md").read_text()
    assert (out / "benchmark.png").stat().st_size > 0
    # the test maps are not the training maps
    import numpy as np

    train = np.load(out / "data" / "model" / "model0.npy")
    test = np.load(out / "test" / "model" / "model0.npy")
    assert not any(np.array_equal(t, s) for t in test for s in train)

    # a rerun reuses the finished runs and their evaluations
    last = out / "runs" / "velocitygan-seed0" / "last.pt"
    mtime = last.stat().st_mtime_ns
    scored = (out / "evals" / "velocitygan-seed0" / "metrics.json").stat().st_mtime_ns
    assert _bench(out) == 0
    assert last.stat().st_mtime_ns == mtime
    assert (out / "evals" / "velocitygan-seed0" / "metrics.json").stat().st_mtime_ns == scored
    # one model of the same study (as a second process would train it) is the same study, and
    # its table keeps the runs other processes scored; a run rewritten since its scoring drops out
    before = (out / "benchmark.csv").read_text()
    (out / "benchmark.csv").unlink()
    assert _bench(out, models="inversionnet") == 0
    assert last.stat().st_mtime_ns == mtime
    assert (out / "benchmark.csv").read_text() == before
    last.touch()
    capsys.readouterr()
    assert _bench(out, models="inversionnet") == 0
    assert "velocitygan" not in (out / "benchmark.csv").read_text()
    said = capsys.readouterr()
    assert "not in the table: velocitygan-seed0" in said.out + said.err

    # other settings into the same folder: one line, exit 2
    capsys.readouterr()
    assert _bench(out, budget="0.5") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "budget_min" in err
    # an epoch count would end a run before its budget: refused
    assert main(["study", "benchmark", "--family", "flatvel-a", "--budget-min", "1",
                 "--out", str(tmp_path / "other"), "--set", "epochs=3"]) == 2
    assert "epochs" in capsys.readouterr().err
