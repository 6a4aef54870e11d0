"""Run records: ``metrics.csv`` (always), TensorBoard (when installed), progress output.

Only the main process creates a :class:`RunLog`; other processes get a silent one.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from ..io import write_csv

__all__ = ["RunLog", "METRIC_COLUMNS"]

METRIC_COLUMNS = ["epoch", "step", "time_s", "samples_per_s", "g_loss", "l1", "l2", "adv",
                  "adv_share", "d_loss", "wasserstein", "gp", "skipped_batches", "val_mae",
                  "val_rmse", "val_ssim", "val_mae_mps", "val_rmse_mps", "best"]


class RunLog:
    """Writes one ``metrics.csv`` row per epoch, TensorBoard scalars and progress output.

    Args:
        run_dir: the run folder (``None`` = silent, for non-main processes).
        progress: ``bar`` (tqdm), ``log`` (plain lines), ``off``, or ``auto``
            (bar when stderr is a terminal, otherwise plain lines).
        tensorboard: write event files under ``run_dir/tensorboard`` if TensorBoard imports.
        resume_step: on resume, the checkpoint's step: rows logged after it are dropped (they
            are redone); rows up to it stay, a stopped epoch's partial validation included, so
            that the row that made ``best.pt`` is still there.
    """

    def __init__(self, run_dir: Path | None, *, progress: str = "auto", tensorboard: bool = True,
                 resume_step: int | None = None) -> None:
        self.run_dir = run_dir
        self.mode = "off" if run_dir is None else progress
        if self.mode == "auto":
            self.mode = "bar" if sys.stderr.isatty() else "log"
        self.rows: list[dict[str, Any]] = []
        self.tb = None
        self._bar = None
        self._epoch = (0, 0)
        if run_dir is None:
            return
        csv_path = run_dir / "metrics.csv"
        if resume_step is not None and csv_path.is_file():
            with open(csv_path, newline="") as fh:
                self.rows = [r for r in csv.DictReader(fh) if int(r["step"]) <= resume_step]
        write_csv(csv_path, self.rows, METRIC_COLUMNS)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is an optional extra
                return
            self.tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))

    def info(self, message: str) -> None:
        """A line for the user (on stderr, above the bar if any)."""
        if self.mode == "off":
            return
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr, flush=True)

    def start_epoch(self, epoch: int, epochs: int, total_batches: int, done: int) -> None:
        """Open the progress bar of one epoch (``done`` batches already run on resume)."""
        self._epoch = (epoch, epochs)
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(total=total_batches, initial=done, desc=f"epoch {epoch + 1}/{epochs}",
                             unit="batch", dynamic_ncols=True, leave=False, file=sys.stderr)

    def step(self, step: int, batch_in_epoch: int, total: int, samples_per_s: float,
             scalars: dict[str, float], every: int) -> None:
        """Report one iteration: bar update, and every ``every`` steps a log line + TB."""
        if self._bar is not None:
            self._bar.update(1)
            post = {k: f"{v:.4g}" for k, v in scalars.items() if k in ("g_loss", "d_loss", "l1")}
            self._bar.set_postfix(post | {"samples/s": f"{samples_per_s:.1f}"}, refresh=False)
        if step % every:
            return
        if self.mode == "log":
            parts = " ".join(f"{k}={v:.4g}" for k, v in scalars.items())
            self.info(f"epoch {self._epoch[0] + 1}/{self._epoch[1]} batch {batch_in_epoch}/{total} "
                      f"step {step} {parts} {samples_per_s:.1f} samples/s")
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(f"train/{k}", v, step)
            self.tb.add_scalar("train/samples_per_s", samples_per_s, step)

    def end_epoch(self, row: dict[str, Any]) -> None:
        """Append the epoch's row to ``metrics.csv`` (rewritten atomically) and TensorBoard."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.run_dir is None:
            return
        self.rows.append(dict(row))
        write_csv(self.run_dir / "metrics.csv", self.rows, METRIC_COLUMNS)
        if self.tb is not None:
            for k in ("val_mae", "val_rmse", "val_ssim", "val_mae_mps"):
                if row.get(k) is not None:
                    self.tb.add_scalar(f"val/{k[4:]}", row[k], row["step"])
            self.tb.flush()
        if row.get("val_mae") is not None:
            self.info(f"epoch {row['epoch']}: val MAE {row['val_mae']:.4f} "
                      f"({row['val_mae_mps']:.1f} m/s), RMSE {row['val_rmse']:.4f}, "
                      f"SSIM {row['val_ssim']:.4f}, {row['samples_per_s']:.1f} samples/s"
                      + ("  [best]" if row.get("best") else ""))

    def close(self) -> None:
        """Close the bar and the TensorBoard writer."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.tb is not None:
            self.tb.close()
