"""Benchmark: models trained for the same wall-clock budget on the same data, scored on a test
set that no training sees.

``DIR`` holds ``data/`` (training maps, seed ``data_seed``, with a validation split), ``test/``
(maps drawn with ``test_seed``), ``runs/MODEL-seedS/``, ``evals/MODEL-seedS/`` (final weights on
the test set) and ``benchmark.csv``, ``.md`` and ``.png`` (test MAE against wall-clock time).

Every run trains until its budget (``time_limit_min``), never an epoch count, so its cosine
schedule ends with the budget. The test set is the runs' monitoring split, so that the figure
shows test MAE over time: nothing in training reads it and the scores are of the final weights
(``last.pt``), never of a checkpoint picked from the curve. A rerun resumes or reuses runs.
The table and figure cover every run of the folder whose final weights are scored, so the last
of several processes training runs of one study at once writes the whole table.
``benchmark.json`` holds the settings all runs share (not models and seeds: separate processes
may train runs of one study at once); other settings, or a run folder trained with another
configuration, are refused.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..evaluate import evaluate_once
from ..io import differences, exclusive_lock, read_json, stamp, write_csv, write_json, write_text
from ..report import read_metrics_csv
from ..synth import generate_dataset
from ..train import resolve_config, train
from ..train.config import MODELS
from ..train.run import absolute_paths, stored_run
from .tables import fmt, markdown_table

__all__ = ["BenchmarkSettings", "run_benchmark", "CSV_COLUMNS"]

CSV_COLUMNS = ["model", "seed", "budget_min", "train_s", "epochs", "steps", "samples_seen",
               "test_samples", "mae", "rmse", "ssim", "mae_mps", "rmse_mps", "config",
               "threads", "device", "checkpoint"]


@dataclass
class BenchmarkSettings:
    """What a benchmark trains and on which data (see the module docstring).

    Attributes:
        family: velocity-map family (``flatvel-a`` ...).
        budget_min: wall-clock training budget of every run, in minutes (validation included).
        models: ``velocitygan`` and/or ``inversionnet``.
        seeds: training seeds (model init, data order) of each model.
        config: training TOML (a bundled name such as ``cpu-2h`` or a path), or None.
        overrides: training settings on top of it (``--set KEY=VALUE``).
        train_samples: maps generated for training (10 % of them form a validation split).
        test_samples: held-out test maps (>= 500 for a stable MAE).
        data_seed: seed of the training maps.
        test_seed: seed of the test maps; must differ from ``data_seed``.
    """

    family: str
    budget_min: float
    models: Sequence[str] = MODELS
    seeds: Sequence[int] = (0, 1)
    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    train_samples: int = 5000
    test_samples: int = 500
    data_seed: int = 0
    test_seed: int = 1000

    def check(self) -> None:
        """One-line errors for settings that cannot make a fair benchmark."""
        if not 0 < self.budget_min < float("inf"):
            raise ConfigError(f"--budget-min {self.budget_min} must be a positive number")
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ConfigError(f"--models {','.join(self.models)}: choose from "
                              f"{', '.join(MODELS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds {self.seeds}: give one or more distinct seeds")
        if self.test_seed == self.data_seed:
            raise ConfigError("the test seed must differ from the training data seed")
        if self.train_samples < 10 or self.test_samples < 1:
            raise ConfigError("need >= 10 training samples and >= 1 test sample")
        reserved = {"model", "seed", "time_limit_min", "train", "val", "dataset", "out",
                    "epochs", "max_steps", "init_from"}
        if reserved & set(self.overrides):
            raise ConfigError(f"the benchmark sets {', '.join(sorted(reserved))} itself; "
                              "do not override them")
        for model in self.models:  # a bad --config or --set fails before any data is made
            self.run_config(model, self.seeds[0], Path("."))

    def run_config(self, model: str, seed: int, out: Path) -> Any:
        """The resolved training configuration of run ``MODEL-seedS`` in study folder ``out``."""
        overrides = {"progress": "log", "tensorboard": False, **self.overrides,
                     "model": model, "seed": seed, "time_limit_min": float(self.budget_min),
                     "epochs": _NO_EPOCH_LIMIT, "max_steps": 0,
                     "train": str(out / "data" / "train.txt"),
                     "val": str(out / "test" / "train.txt"),
                     "dataset": str(out / "data" / "dataset.json"),
                     "out": str(out / "runs" / f"{model}-seed{seed}")}
        return absolute_paths(resolve_config(file=self.config, overrides=overrides))

    def to_dict(self) -> dict[str, Any]:
        """The settings every run shares (what ``benchmark.json`` stores)."""
        d = asdict(self)
        del d["models"], d["seeds"]
        return d


_NO_EPOCH_LIMIT = 1_000_000  # the budget, not an epoch count, ends every run


def _claim(out: Path, settings: BenchmarkSettings) -> None:
    """Store the settings in ``out/benchmark.json``, or refuse if it holds other ones."""
    path, now = out / "benchmark.json", stamp(settings.to_dict())
    stored = read_json(path)
    if stored is None and path.exists():
        raise ConfigError(f"{path} is unreadable; remove it (and the runs it describes) or use "
                          "another --out")
    if stored is None:
        write_json(path, now)
    elif what := differences(stored, now):
        raise ConfigError(f"{out} holds a benchmark with other settings: {what}; use another "
                          "--out or remove that folder")


def _curve(run: Path) -> list[dict[str, float]]:
    """``time_s``, ``steps``, ``epoch`` and ``val_mae_mps`` of each validated epoch of a run."""
    cols = read_metrics_csv(run / "metrics.csv")
    rows = zip(cols["time_s"], cols["step"], cols["epoch"], cols.get("val_mae_mps", []),
               strict=False)
    return [{"time_s": t, "steps": int(s), "epoch": int(e), "val_mae_mps": v}
            for t, s, e, v in rows if v is not None]


def run_benchmark(settings: BenchmarkSettings, out_dir: str | Path, *,
                  log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Generate (or reuse) the data, train every model x seed for the budget, evaluate the final
    weights on the test set; write ``benchmark.csv``/``.md``/``.png``; return the table rows."""
    settings.check()
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    _claim(out, settings)
    # processes training other runs wait here while the first one generates; studies whose
    # data folder links to another study's share that study's lock
    lock = (out / "data").resolve().parent / ".data.lock"
    if not os.access(lock.parent, os.W_OK):  # linked read-only data: only this study's lock
        lock = out / ".data.lock"
    with exclusive_lock(lock, f"the data of {out}", wait=True):
        generate_dataset(out / "data", settings.family, settings.train_samples,
                         seed=settings.data_seed, val_fraction=0.1)
        generate_dataset(out / "test", settings.family, settings.test_samples,
                         seed=settings.test_seed, val_fraction=0.0)
    test = out / "test" / "train.txt"  # the whole test set (no split of its own)
    rows: dict[str, dict[str, Any]] = {}
    for model in settings.models:
        for seed in settings.seeds:
            name = f"{model}-seed{seed}"
            log(f"benchmark: {name}, {settings.budget_min:g} min")
            cfg = settings.run_config(model, seed, out)
            if resume := (stored_run(cfg) is not None):  # a finished run stops at once
                log(f"resuming {cfg.out}")
            train(cfg, resume=resume)
            m = evaluate_once(Path(cfg.out) / "last.pt", test, out / "evals" / name,
                              extra={"threads": torch.get_num_threads()})
            rows[name] = _row(settings, model, seed, out, m)
            table = _all_scored(rows, settings, out)
            write_csv(out / "benchmark.csv", table, CSV_COLUMNS)
    listed = {Path(r["checkpoint"]).parent.name for r in table}
    for run in sorted((out / "runs").glob("*-seed*")):
        if run.name not in listed:  # training elsewhere, or its scores are stale
            model, _, seed = run.name.rpartition("-seed")
            log(f"not in the table: {run.name}, whose final weights are not scored; add it with "
                f"--models {model} --seeds {seed} once it has finished")
    write_text(out / "benchmark.md", benchmark_markdown(table, settings))
    _figure({f"{r['model']}-seed{r['seed']}": _curve(Path(r["checkpoint"]).parent) for r in table},
            out / "benchmark.png", settings)
    return table


def _all_scored(rows: dict[str, dict[str, Any]], settings: BenchmarkSettings,
                out: Path) -> list[dict[str, Any]]:
    """``rows`` and those of the folder's other runs whose final weights are scored (other
    processes may train runs of the same study), by model and seed."""
    rows = dict(rows)
    test = out / "test" / "train.txt"
    for run in sorted((out / "runs").glob("*-seed*")):
        model, _, seed = run.name.rpartition("-seed")
        if run.name not in rows and model in MODELS and seed.isdigit():
            m = evaluate_once(run / "last.pt", test, out / "evals" / run.name, stored_only=True)
            if m is not None:
                rows[run.name] = _row(settings, model, int(seed), out, m)
    return sorted(rows.values(), key=lambda r: (r["model"], r["seed"]))


def _row(settings: BenchmarkSettings, model: str, seed: int, out: Path,
         m: dict[str, Any]) -> dict[str, Any]:
    """One table row: the run's last validated epoch and its test scores ``m``."""
    run = out / "runs" / f"{model}-seed{seed}"
    curve = _curve(run)
    last = curve[-1] if curve else {"time_s": 0.0, "steps": 0, "epoch": 0}
    return {
        "model": model, "seed": seed, "budget_min": settings.budget_min,
        "train_s": round(last["time_s"], 1), "epochs": last["epoch"], "steps": last["steps"],
        "samples_seen": last["steps"] * settings.run_config(model, seed, out).batch_size,
        "test_samples": m["samples"], "mae": m["mae"], "rmse": m["rmse"], "ssim": m["ssim"],
        "mae_mps": m["mae_mps"], "rmse_mps": m["rmse_mps"],
        "config": settings.config or "openfwi", "threads": m.get("threads", ""),
        "device": m["device"], "checkpoint": str(run / "last.pt"),
    }


def benchmark_markdown(rows: Sequence[dict[str, Any]], settings: BenchmarkSettings) -> str:
    """The results as a Markdown table with the machine and settings it was measured with."""
    body = [[r["model"], r["seed"], f"{r['mae_mps']:.1f}", f"{r['rmse_mps']:.1f}",
             fmt(r["ssim"], 4), fmt(r["mae"]), f"{r['train_s'] / 60:.1f}", r["epochs"],
             r["samples_seen"]] for r in rows]
    table = markdown_table(["model", "seed", "test MAE (m/s)", "RMSE (m/s)", "SSIM",
                            "MAE (norm.)", "train (min)", "epochs", "samples seen"], body)
    machine = (f"{platform.node()} ({os.cpu_count()} CPUs), torch {torch.__version__}, "
               f"{rows[0]['threads'] if rows else '?'} thread(s), device "
               f"{rows[0]['device'] if rows else '?'}")
    return (f"# Benchmark: {settings.family}, {settings.budget_min:g} min per run\n\n"
            f"Machine: {machine}. Config: {settings.config or 'openfwi'}"
            f"{' ' + str(settings.overrides) if settings.overrides else ''}. "
            f"Training maps: {settings.train_samples} (seed {settings.data_seed}, 10 % "
            f"validation); test maps: {settings.test_samples} (seed {settings.test_seed}). "
            "Scores: final weights (last.pt) on the test set; SSIM in the OpenFWI convention.\n\n"
            + table + "\n")


def _figure(curves: dict[str, list[dict[str, float]]], path: Path,
            settings: BenchmarkSettings) -> None:
    from matplotlib.figure import Figure

    from ..plot import save_figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ax.plot([c["time_s"] / 60 for c in curve], [c["val_mae_mps"] for c in curve],
                marker=".", label=name)
    ax.set_xlabel("wall-clock training time (min)")
    ax.set_ylabel("test MAE (m/s)")
    ax.set_yscale("log")
    ax.set_title(f"{settings.family}: test MAE during training")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    save_figure(fig, path)
