"""One self-contained HTML page per training run: curves, metrics, sample figures, config.

Reads (all optional except the folder itself): ``RUN/metrics.csv`` (one row per epoch, columns
read defensively: whatever numeric columns exist are plotted), ``RUN/config.toml``, and an
evaluation folder (``RUN/eval`` by default) holding ``metrics.json`` and ``figures/*.png`` from
``velocitygan evaluate``. Images are embedded as base64 PNG, so the page can be mailed or
archived alone.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
from pathlib import Path
from typing import Any

from .errors import DataError
from .io import read_json, write_text

__all__ = ["read_metrics_csv", "curves_figure", "write_report", "PUBLISHED"]

GENERATOR_COLUMNS = ("g_loss", "l1", "l2", "adv", "loss", "train_loss")  # adv: -mean D(G(x))
CRITIC_COLUMNS = ("d_loss", "wasserstein", "gp")
# OpenFWI benchmark, normalised units ("l1" training), from the published tables.
PUBLISHED: dict[str, dict[str, float]] = {
    "flatvel-a": {"InversionNet MAE": 0.0131, "VelocityGAN MAE": 0.0118,
                  "VelocityGAN RMSE": 0.0178, "VelocityGAN SSIM": 0.9916},
    "flatvel-b": {"InversionNet MAE": 0.0351, "VelocityGAN MAE": 0.0329,
                  "VelocityGAN SSIM": 0.9521},
    "curvevel-a": {"InversionNet MAE": 0.0685, "VelocityGAN MAE": 0.0482,
                   "VelocityGAN SSIM": 0.8624},
    "curvevel-b": {"InversionNet MAE": 0.1497, "VelocityGAN MAE": 0.1268,
                   "VelocityGAN SSIM": 0.7111},
    "flatfault-a": {"InversionNet MAE": 0.0172, "VelocityGAN MAE": 0.0868},
    "flatfault-b": {"InversionNet MAE": 0.1055, "VelocityGAN MAE": 0.0925},
    "curvefault-a": {"InversionNet MAE": 0.0260, "VelocityGAN MAE": 0.0258},
    "curvefault-b": {"InversionNet MAE": 0.1646, "VelocityGAN MAE": 0.1571},
    "style-a": {"InversionNet MAE": 0.0625, "VelocityGAN MAE": 0.0612},
    "style-b": {"InversionNet MAE": 0.0689, "VelocityGAN MAE": 0.0697},
}  # fmt: skip


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def read_metrics_csv(path: str | Path) -> dict[str, list[float | None]]:
    """Numeric columns of a ``metrics.csv`` (non-numeric cells -> None; text columns dropped)."""
    path = Path(path)
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read metrics CSV ({exc})") from None
    columns: dict[str, list[float | None]] = {}
    for name in rows[0].keys() if rows else []:
        if name is None:
            continue
        values = [_number(r.get(name, "")) for r in rows]
        if any(v is not None for v in values):
            columns[name] = values
    return columns


def _series(cols: dict[str, list], x_name: str, y_name: str) -> tuple[list, list]:
    pairs = [(x, y) for x, y in zip(cols[x_name], cols[y_name], strict=True)
             if x is not None and y is not None]  # fmt: skip
    return [p[0] for p in pairs], [p[1] for p in pairs]


def curves_figure(cols: dict[str, list[float | None]]):
    """Training losses, validation error (m/s) and SSIM against epoch (or step); None if empty."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from .plot import STYLE

    x_name = next((c for c in ("epoch", "step") if c in cols), None)
    if x_name is None:
        n = len(next(iter(cols.values()), []))
        cols = {**cols, "row": list(range(n))}
        x_name = "row"
    gen = [c for c in cols if c in GENERATOR_COLUMNS
           or (c.endswith("loss") and c not in CRITIC_COLUMNS)]  # fmt: skip
    share = [c for c in ("adv_share",) if c in cols]  # a fraction in [0, 1], not a loss
    critic = [c for c in cols if c in CRITIC_COLUMNS]
    errors = [c for c in ("val_mae_mps", "val_rmse_mps") if c in cols]
    if not errors:
        errors = [c for c in ("val_mae", "val_rmse") if c in cols]
    panels = [p for p in (("Generator losses", gen), ("Critic (WGAN-GP)", critic),
                          ("Adversarial share of the generator gradient", share),
                          ("Validation error", errors),
                          ("Validation SSIM", [c for c in ("val_ssim",) if c in cols])) if p[1]]
    if not panels:
        return None
    with rc_context(STYLE):
        ncols = 2 if len(panels) >= 4 else len(panels)  # two columns keep the panels readable
        nrows = -(-len(panels) // ncols)
        fig = Figure(figsize=(3.6 * ncols, 2.8 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        for ax, (title, names) in zip(axes, panels, strict=False):  # fmt: skip
            for name in names:
                xs, ys = _series(cols, x_name, name)
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, ms=3, lw=1.2, label=name)
            positive = all(v > 0 for n in names for v in _series(cols, x_name, n)[1])
            if title == "Generator losses" and positive:
                ax.set_yscale("log")
            ax.set_title(title)
            ax.set_xlabel(x_name.capitalize())
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            unit = " (m/s)" if any(n.endswith("_mps") for n in names) else ""
            ylabel = {"Validation error": "Error" + unit, "Validation SSIM": "SSIM",
                      "Adversarial share of the generator gradient": "Share"}
            ax.set_ylabel(ylabel.get(title, "Loss"))
            ax.grid(alpha=0.3, lw=0.5)
            if len(names) > 1:
                ax.legend(frameon=False, fontsize=7)
    return fig


def _png_b64(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _metrics_table(m: dict[str, Any]) -> str:
    rows = [("MAE", m.get("mae"), m.get("mae_mps")), ("RMSE", m.get("rmse"), m.get("rmse_mps")),
            ("SSIM (OpenFWI convention)", m.get("ssim"), None)]  # fmt: skip
    body = "".join(
        f"<tr><td>{k}</td><td>{'' if v is None else f'{v:.4f}'}</td>"
        f"<td>{'' if u is None else f'{u:.1f}'}</td></tr>"
        for k, v, u in rows
    )
    extra = {k: v for k, v in m.items() if k in ("samples", "dataset", "checkpoint", "split",
                                                "perturbation_label", "data_misfit")}  # fmt: skip
    info = "".join(f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>"
                   for k, v in extra.items())  # fmt: skip
    table = ("<table><tr><th>metric</th><th>normalised</th><th>m/s</th></tr>"
             f"{body}</table><ul>{info}</ul>")  # fmt: skip
    # only next to OpenFWI's own data (a generated set may carry a benchmark's name)
    pub = PUBLISHED.get(str(m.get("dataset", "")).lower())
    if pub and m.get("dataset_is_openfwi", True):
        cells = "".join(f"<tr><td>{k}</td><td>{v:.4f}</td></tr>" for k, v in pub.items())
        table += ("<p>Published OpenFWI numbers for this dataset (normalised):</p>"
                  f"<table><tr><th>model / metric</th><th>value</th></tr>{cells}</table>")
    return table


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.25em .7em;
text-align:right}th{background:#f4f4f4}td:first-child{text-align:left}img{max-width:100%}
pre{background:#f7f7f7;padding:1em;overflow-x:auto;font-size:.85em}.note{color:#777}"""


def write_report(run_dir: str | Path, *, out: str | Path | None = None,
                 eval_dir: str | Path | None = None) -> Path:
    """Write the HTML report of ``run_dir`` (default ``RUN/report.html``); returns its path."""
    run = Path(run_dir).expanduser()
    if not run.is_dir():
        raise DataError(f"{run}: run folder not found")
    ev = Path(eval_dir) if eval_dir is not None else run / "eval"
    if eval_dir is not None and not (ev / "metrics.json").is_file():
        raise DataError(f"{ev}: no metrics.json; run velocitygan evaluate --out {ev} first")
    parts = [f"<h1>Run report: {html.escape(run.resolve().name)}</h1>", "<h2>Training curves</h2>"]
    csv_path = run / "metrics.csv"
    fig = curves_figure(read_metrics_csv(csv_path)) if csv_path.is_file() else None
    parts.append(f'<img alt="training curves" src="data:image/png;base64,{_png_b64(fig)}">'
                 if fig is not None else '<p class="note">no metrics.csv with numeric columns</p>')
    parts.append("<h2>Metrics</h2>")
    if (ev / "metrics.json").is_file():
        m = read_json(ev / "metrics.json")
        if m is None:
            raise DataError(f"{ev / 'metrics.json'}: not a readable JSON object of metrics; "
                            "rerun velocitygan evaluate")
        parts.append(_metrics_table(m))
    else:
        parts.append(f'<p class="note">no evaluation yet: velocitygan evaluate --checkpoint '
                     f"{html.escape(str(run / 'best.pt'))} --data VAL.txt --out "
                     f"{html.escape(str(ev))}</p>")
    figs = sorted((ev / "figures").glob("*.png")) if (ev / "figures").is_dir() else []
    order = {"best": 0, "median": 1, "worst": 2}
    figs.sort(key=lambda p: (order.get(p.stem, 3), p.name))
    if figs:
        parts.append("<h2>Samples (ranked by MAE)</h2>")
        for p in figs:
            data = base64.b64encode(p.read_bytes()).decode("ascii")
            name = html.escape(p.stem)
            parts.append(f'<p><b>{name}</b><br><img alt="{name}" '
                         f'src="data:image/png;base64,{data}"></p>')
    cfg = run / "config.toml"
    parts.append("<h2>Configuration</h2>")
    parts.append(f"<pre>{html.escape(cfg.read_text())}</pre>" if cfg.is_file()
                 else '<p class="note">no config.toml</p>')  # fmt: skip
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(run.name)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")  # fmt: skip
    target = Path(out) if out is not None else run / "report.html"
    write_text(target, page)
    return target
