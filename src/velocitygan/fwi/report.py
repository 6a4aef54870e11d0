"""Files and figures of an FWI run: velocity ``.npy`` (m/s), ``history.csv``, JSON, PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..io import save_npy, write_csv, write_json
from ..plot import save_figure, velocity_figure
from .inversion import FWIResult

__all__ = ["misfit_figure", "write_fwi_outputs"]

HISTORY_COLUMNS = ["iteration", "band_hz", "time_s", "misfit", "mae_mps"]


def misfit_figure(history: list[dict]) -> Figure:
    """Data misfit (and MAE in m/s when known) against iteration; band changes marked."""
    fig = Figure(figsize=(6.0, 3.0), layout="constrained")
    ax = fig.subplots()
    it = [h["iteration"] for h in history]
    ax.semilogy(it, [h["misfit"] for h in history], color="C0")
    ax.set_xlabel("Iteration")
    ax.set_ylabel("Relative L2 data misfit (band)", color="C0")
    for a, b in zip(history, history[1:], strict=False):
        if a["band_hz"] != b["band_hz"]:
            ax.axvline(b["iteration"] - 0.5, color="0.7", lw=0.8, ls="--")
            ax.annotate(f"{b['band_hz']} Hz" if b["band_hz"] != "full" else "full band",
                        (b["iteration"], 1), xycoords=("data", "axes fraction"),
                        va="top", fontsize=7, color="0.4")  # fmt: skip
    if history and history[0].get("mae_mps") is not None:
        ax2 = ax.twinx()
        ax2.plot(it, [h["mae_mps"] for h in history], color="C1")
        ax2.set_ylabel("MAE (m/s)", color="C1")
    return fig


def write_fwi_outputs(
    result: FWIResult, out_dir: str | Path, *, name: str = "velocity", dx_m: float = 10.0,
    true_mps: np.ndarray | None = None, sample_ids: list[int] | None = None,
    figures: bool = True, max_figures: int = 6,
) -> dict:
    """Write ``NAME.npy`` (m/s, ``(N,1,nz,nx)``), ``history.csv``, ``fwi.json``, figures.

    Returns the summary written to ``fwi.json``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_npy(out / f"{name}.npy", result.velocity_mps)
    save_npy(out / "start.npy", result.init_velocity_mps)
    write_csv(out / "history.csv", result.history, HISTORY_COLUMNS)
    ids = sample_ids if sample_ids is not None else list(range(len(result.velocity_mps)))
    summary = {"samples": ids, "settings": result.settings, "wall_time_s": result.wall_time_s,
               "start_misfit": [float(x) for x in result.init_misfit],
               "final_misfit": [float(x) for x in result.misfit],
               "mean_start_misfit": float(np.mean(result.init_misfit)),
               "mean_final_misfit": float(np.mean(result.misfit))}
    if true_mps is not None:
        t = np.asarray(true_mps, dtype=np.float32).reshape(result.velocity_mps.shape)
        summary["start_mae_mps"] = float(np.abs(result.init_velocity_mps - t).mean())
        summary["final_mae_mps"] = float(np.abs(result.velocity_mps - t).mean())
    write_json(out / "fwi.json", summary)
    if figures:
        if result.history:
            save_figure(misfit_figure(result.history), out / "history.png")
        for k in range(min(len(ids), max_figures)):
            panels = [result.init_velocity_mps[k, 0], result.velocity_mps[k, 0]]
            titles = ["Start", "FWI"]
            if true_mps is not None:
                panels.append(t[k, 0])
                titles.append("True")
            fig = velocity_figure(np.stack(panels), dx_m=dx_m, titles=titles)
            save_figure(fig, out / f"{name}_sample{ids[k]}.png")
    return summary
