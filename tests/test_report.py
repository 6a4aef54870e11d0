"""``velocitygan report RUN``: one self-contained HTML page."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
from evalkit import layered_velocity

from velocitygan.cli import main
from velocitygan.plot import comparison_figure, save_figure
from velocitygan.report import curves_figure, read_metrics_csv

CSV = """epoch,step,time_s,samples_per_s,g_loss,l1,l2,adv,d_loss,wasserstein,gp,skipped_batches,\
val_mae,val_rmse,val_ssim,val_mae_mps,val_rmse_mps,best
0,10,12.5,20.1,45.2,0.31,0.15,-0.2,-1.5,2.1,0.05,0,0.30,0.41,0.52,450,615,1
1,20,25.0,20.3,30.1,0.21,0.08,-0.1,-1.1,1.6,0.04,0,0.22,0.30,0.63,330,450,1
2,30,37.4,20.2,22.7,0.15,0.05,,-0.9,1.2,0.03,0,,,,,,0
"""


def _run(tmp_path):
    run = tmp_path / "run"
    (run / "eval" / "figures").mkdir(parents=True)
    (run / "metrics.csv").write_text(CSV)
    (run / "config.toml").write_text('model = "velocitygan"\nlr = 1e-4  # <b>not html</b>\n')
    v = layered_velocity(np.random.default_rng(0), 2)
    for name in ("worst", "best"):
        save_figure(comparison_figure(v[0] + 20, v[0]), run / "eval" / "figures" / f"{name}.png")
    metrics = {"mae": 0.0213, "rmse": 0.0402, "ssim": 0.9411, "mae_mps": 31.95,
               "rmse_mps": 60.3, "samples": 600, "dataset": "flatvel-a", "checkpoint": "x.pt"}
    (run / "eval" / "metrics.json").write_text(json.dumps(metrics))
    return run


def test_metrics_csv_read_defensively(tmp_path) -> None:
    cols = read_metrics_csv(_run(tmp_path) / "metrics.csv")
    assert cols["val_mae"] == [0.30, 0.22, None] and cols["adv"][2] is None
    fig = curves_figure(cols)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Generator losses", "Critic (WGAN-GP)", "Validation error",
                      "Validation SSIM"]
    assert curves_figure({"foo": [1.0, 2.0]}) is None  # nothing known to plot
    # A CSV with only a step column and a loss still gives curves.
    (tmp_path / "m.csv").write_text("step,train_loss,note\n1,0.5,a\n2,0.4,b\n")
    cols = read_metrics_csv(tmp_path / "m.csv")
    assert "note" not in cols and curves_figure(cols).axes[0].get_xlabel() == "Step"


def test_report_is_self_contained_html(tmp_path) -> None:
    run = _run(tmp_path)
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "src=\"http" not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 3  # curves + 2 sample figures
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert page.index(">best<") < page.index(">worst<")
    assert "31.9" in page and "0.9411" in page and "0.0118" in page  # ours + published
    assert "&lt;b&gt;not html&lt;/b&gt;" in page  # config shown escaped


def test_report_without_eval_and_errors(tmp_path, capsys) -> None:
    run = tmp_path / "bare"
    run.mkdir()
    out = tmp_path / "r.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert "no evaluation yet" in out.read_text()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert main(["report", str(run), "--eval", str(tmp_path)]) == 2
    assert "metrics.json" in capsys.readouterr().err


def test_report_labels_and_bad_metrics(tmp_path, capsys) -> None:
    from velocitygan.report import CRITIC_COLUMNS, GENERATOR_COLUMNS

    assert "adv" in GENERATOR_COLUMNS and "adv" not in CRITIC_COLUMNS  # a generator term
    run = _run(tmp_path)
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    (run / "eval" / "metrics.json").write_text(json.dumps({**metrics,
                                                           "dataset_is_openfwi": False}))
    assert main(["report", str(run)]) == 0
    assert "Published OpenFWI numbers" not in (run / "report.html").read_text()
    for bad in ('{"mae": 0.1', "[1, 2]"):
        (run / "eval" / "metrics.json").write_text(bad)
        assert main(["report", str(run)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
