"""Transfer study: train on one velocity family, test on another before and after fine-tuning.

For each model (VelocityGAN, InversionNet) the study

1. trains on the SOURCE family (generated here, or a given dataset folder), or starts from a
   given checkpoint (``source_checkpoints``, e.g. the bundled ``pretrained:flatvel-a``),
2. evaluates that model on the source validation split (in-domain) and on the TARGET validation
   split without any target data (K = 0),
3. for each K > 0 fine-tunes it on the first K target training samples
   (``train --init-from SOURCE/best.pt [--freeze ...]``) and, as the reference point, trains the
   same network from scratch on the same K samples with the same number of steps,
4. evaluates those runs' final (``last.pt``) weights on the target validation split.

The target validation split is never used to pick a checkpoint (only the source model's
``best.pt`` is chosen, on source validation data). Runs are reused when complete and resumed
when interrupted, so a study can be re-run to finish it. Writes ``DIR/transfer.csv`` and
``DIR/transfer.md``; runs under ``DIR/runs``, evaluations under ``DIR/evals``, data under
``DIR/data``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import load_checkpoint
from ..data import SplitEntry, read_split, write_split
from ..data.npyfile import open_npy
from ..errors import ConfigError
from ..evaluate import evaluate_once
from ..io import save_npy, write_csv, write_json, write_text
from ..pretrained import resolve_checkpoint
from ..train.config import MODELS
from .tables import markdown_table

__all__ = ["TransferSettings", "prepare_dataset", "write_subset", "run_transfer", "CSV_COLUMNS"]

CSV_COLUMNS = ["model", "source", "target", "k", "init", "evaluated_on", "train_samples",
               "epochs", "steps", "train_s", "samples", "mae", "rmse", "ssim", "mae_mps",
               "rmse_mps", "checkpoint"]


@dataclass
class TransferSettings:
    """What the transfer study does (see the module docstring).

    Attributes:
        source: source family (``flatvel-a`` ...) or a dataset folder / ``dataset.json``.
        target: target family or dataset folder.
        ks: numbers of target training samples for fine-tuning (0 = no fine-tuning).
        models: ``velocitygan`` and/or ``inversionnet``.
        source_samples: source training samples to generate (rounded up to whole shards).
        val_samples: validation samples generated per family (one shard).
        config: training TOML file or bundled config name (e.g. ``cpu-demo``), or None.
        overrides: training settings on top of it (epochs, width, batch_size ...).
        finetune_epochs: epochs of each fine-tuning run (default: the source run's epochs).
        finetune_steps: if > 0, every fine-tuning and scratch run takes exactly this many
            iterations whatever K (epochs follow from K), a fair budget across K.
        freeze: generator part kept fixed while fine-tuning: none, encoder, decoder.
        scratch: also train from scratch on the K target samples.
        source_checkpoints: model -> checkpoint (path or ``pretrained:NAME``) used as that
            model's source model instead of training one on the source data.
        seed: seed of data generation (source: seed, target: seed + 1) and of training.
        device: ``auto``, ``cpu`` or ``cuda``.
        gen_workers: processes for data generation (None: one per core).
    """

    source: str
    target: str
    ks: Sequence[int] = (0, 100, 300)
    models: Sequence[str] = MODELS
    source_samples: int = 500
    val_samples: int = 100
    config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    finetune_epochs: int = 0
    finetune_steps: int = 0
    freeze: str = "none"
    scratch: bool = True
    source_checkpoints: dict[str, str] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"
    gen_workers: int | None = None

    def check(self) -> None:
        """Raise ConfigError on settings that cannot work."""
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ConfigError(f"models {','.join(bad) or '(none)'}: "
                              f"choose from {', '.join(MODELS)}")
        if not self.ks or any(int(k) != k or k < 0 for k in self.ks):
            raise ConfigError(f"--k {self.ks}: give non-negative sample counts, e.g. 0,100,300")
        if self.source_samples < 1 or self.val_samples < 1:
            raise ConfigError("source and validation sample counts must be >= 1")
        if extra := sorted(set(self.source_checkpoints) - set(self.models)):
            raise ConfigError(f"source checkpoint for {', '.join(extra)}, which this study "
                              f"does not run; give MODEL=CKPT for one of {', '.join(self.models)}")
        if self.freeze not in ("none", "encoder", "decoder"):
            raise ConfigError(f"freeze {self.freeze!r}: choose none, encoder or decoder")


def _card(ref: str | Path) -> Path | None:
    p = Path(ref).expanduser()
    if p.is_dir() and (p / "dataset.json").is_file():
        return p / "dataset.json"
    return p if p.is_file() and p.suffix == ".json" else None


def prepare_dataset(ref: str, folder: Path, *, n_train: int, n_val: int, seed: int,
                    workers: int | None = None) -> Path:
    """A dataset's ``dataset.json``: ``ref`` itself if it is a dataset folder or card, else a
    new dataset of family ``ref`` generated into ``folder`` (``n_train`` rounded up to whole
    shards of ``n_val`` samples, plus one validation shard of ``n_val``)."""
    card = _card(ref)
    if card is not None:
        for name in ("train.txt", "val.txt"):
            if not (card.parent / name).is_file():
                raise ConfigError(f"{card.parent}: dataset folder has no {name}")
        return card
    from ..synth import generate_dataset

    shards = math.ceil(n_train / n_val) + 1
    return Path(generate_dataset(folder, ref, shards * n_val, seed=seed, shard_size=n_val,
                                 val_fraction=1.0 / shards, workers=workers))


def write_subset(split: str | Path, k: int, folder: Path) -> Path:
    """Copy the first ``k`` samples of ``split`` into ``folder`` (``data.npy``, ``model.npy``)
    and return the path of its ``train.txt``."""
    entries = read_split(split, require_labels=True)
    data, labels, have = [], [], 0
    for e in entries:
        if have >= k:
            break
        d, m = open_npy(e.data), open_npy(e.label)
        take = min(k - have, len(d))
        data.append(np.asarray(d[:take], dtype=np.float32))
        labels.append(np.asarray(m[:take], dtype=np.float32))
        have += take
    if have < k:
        raise ConfigError(f"{split}: holds {have} samples, fewer than K = {k}; generate more "
                          "target data (larger K pool) or lower --k")
    save_npy(folder / "data.npy", np.concatenate(data))
    save_npy(folder / "model.npy", np.concatenate(labels).reshape(k, 1, *labels[0].shape[-2:]))
    out = folder / "train.txt"
    write_split(out, [SplitEntry(folder / "data.npy", folder / "model.npy")])
    return out


def _train(settings: TransferSettings, run: dict[str, Any], log: Callable[[str], None]
           ) -> tuple[Path, dict[str, Any]]:
    """Train (or reuse / resume) one run; returns (run folder, its :func:`_position`)."""
    from ..train import resolve_config, train
    from ..train.run import absolute_paths, stored_run

    overrides = {"seed": settings.seed, "device": settings.device, "progress": "log",
                 "tensorboard": False, **settings.overrides, **run}
    cfg = absolute_paths(resolve_config(file=settings.config, overrides=overrides))
    out = Path(cfg.out)
    last = out / "last.pt"
    if (ck := stored_run(cfg)) is not None:
        done_steps = cfg.max_steps and ck.get("step", 0) >= cfg.max_steps
        if ck.get("epoch", 0) >= cfg.epochs or done_steps:
            log(f"reusing finished run {out}")
            return out, _position(out, ck)
    train(cfg, resume=last.is_file())  # an unfinished run of these settings continues
    return out, _position(out, load_checkpoint(last))


def _position(run: Path, ck: dict[str, Any]) -> dict[str, Any]:
    """Epoch, step and training time of a run (``time_s`` of the last ``metrics.csv`` row; 0
    if unknown)."""
    try:
        with open(run / "metrics.csv", newline="") as fh:
            train_s = round(float(list(csv.DictReader(fh))[-1]["time_s"]), 1)
    except (OSError, KeyError, ValueError, IndexError):
        train_s = 0.0
    return {"epoch": int(ck["epoch"]), "step": int(ck["step"]), "train_s": train_s}


def _finetune_budget(settings: TransferSettings, k: int, batch: int, source_epochs: int
                     ) -> dict[str, int]:
    """Epochs / max_steps / batch of a run on K samples.

    The K samples are preloaded and read in-process (``workers = 0``): with small K an epoch is
    a step or two, and starting DataLoader workers every epoch would cost more than the step.
    Validation runs once, at the end (the study evaluates the final weights itself).
    """
    batch = min(batch, k)
    common = {"batch_size": batch, "workers": 0, "preload": True}
    if settings.finetune_steps > 0:
        per_epoch = max(1, k // batch)
        epochs = math.ceil(settings.finetune_steps / per_epoch)
        return {"epochs": epochs, "max_steps": settings.finetune_steps,
                "val_every_epochs": epochs, **common}
    epochs = settings.finetune_epochs or source_epochs
    return {"epochs": epochs, "val_every_epochs": epochs, **common}


def run_transfer(settings: TransferSettings, out_dir: str | Path, *,
                 log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the transfer study of ``settings`` into ``out_dir``; returns the table rows."""
    settings.check()
    out = Path(out_dir)
    ks = sorted({int(k) for k in settings.ks})
    given = {m: _given(settings, m, ref, out) for m, ref in settings.source_checkpoints.items()}
    log(f"data: {settings.source} (source) and {settings.target} (target)")
    src_card = prepare_dataset(settings.source, out / "data" / "source", seed=settings.seed,
                               n_train=settings.source_samples, n_val=settings.val_samples,
                               workers=settings.gen_workers)
    tgt_card = prepare_dataset(settings.target, out / "data" / "target", seed=settings.seed + 1,
                               n_train=max([*ks, 1]), n_val=settings.val_samples,
                               workers=settings.gen_workers)
    subsets = {k: write_subset(tgt_card.parent / "train.txt", k, out / "data" / f"target-k{k}")
               for k in ks if k > 0}
    rows: list[dict[str, Any]] = []
    for model in settings.models:
        rows += _model_rows(settings, model, src_card, tgt_card, subsets, out, given.get(model),
                            log)
    write_csv(out / "transfer.csv", rows, CSV_COLUMNS)
    write_text(out / "transfer.md", transfer_markdown(rows, settings))
    return rows


def _given(settings: TransferSettings, model: str, ref: str, out: Path) -> dict[str, Any]:
    """Check a given source checkpoint before any work starts; write its normalisation as the
    card its fine-tuning runs use (the one it was trained with)."""
    from ..train import resolve_config

    ck = load_checkpoint(resolve_checkpoint(ref))
    arch = ck.get("model") or {}
    if (kind := arch.get("kind")) != model:
        raise ConfigError(f"--source-checkpoint {model}={ref} holds a {kind} model, not {model}")
    width = resolve_config(file=settings.config, overrides={**settings.overrides,
                                                            "model": model}).width
    if (theirs := arch.get("generator", {}).get("width")) != width:
        raise ConfigError(f"--source-checkpoint {model}={ref} has width {theirs}, the study's "
                          f"runs {width}; pass --width {theirs} or a --config with it")
    if not isinstance(ck.get("dataset"), dict):
        raise ConfigError(f"--source-checkpoint {model}={ref} records no dataset "
                          "normalisation to fine-tune with; give a checkpoint made by "
                          "`velocitygan train`")
    card = out / "data" / f"given-{model}" / "dataset.json"
    write_json(card, ck["dataset"])
    return {"ref": ref, "file": resolve_checkpoint(ref), "card": card,
            "epoch": int(ck.get("epoch", 0)), "step": int(ck.get("step", 0))}


def _model_rows(settings: TransferSettings, model: str, src_card: Path, tgt_card: Path,
                subsets: dict[int, Path], out: Path, given: dict[str, Any] | None,
                log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Source training, zero-shot evaluation, then fine-tuning / scratch runs for one model."""
    from ..train import resolve_config

    cfg = resolve_config(file=settings.config, overrides={**settings.overrides, "model": model})
    src_val, tgt_val = src_card.parent / "val.txt", tgt_card.parent / "val.txt"
    base = {"model": model, "source": _name(settings.source), "target": _name(settings.target)}
    norm = src_card
    if given:  # its own normalisation for fine-tuning; its name as typed in the table
        src_best, norm, label = given["file"], given["card"], given["ref"]
        info = {**base, "epoch": given["epoch"], "step": given["step"], "train_s": "",
                "train_samples": "given"}
    else:
        run, pos = _train(settings, {
            "model": model, "train": str(src_card.parent / "train.txt"), "val": str(src_val),
            "dataset": str(src_card), "out": str(out / "runs" / model / "source")}, log)
        src_best = label = run / "best.pt"
        info = {**base, **pos, "train_samples": _count(src_card.parent / "train.txt")}
    rows = []
    for split, where, k in ((src_val, "source val", ""), (tgt_val, "target val", 0)):
        m = evaluate_once(src_best, split, out / "evals" / model / where.replace(" ", "-"),
                          device=settings.device)
        rows.append(_row(info, m, k=k, init="source model", where=where, ckpt=label))
        log(f"{model}: source model on {where}: MAE {m['mae_mps']:.1f} m/s")
    for k, subset in subsets.items():
        budget = _finetune_budget(settings, k, cfg.batch_size, cfg.epochs)
        starts = [("source model", "finetune", {"init_from": str(src_best),
                                                "freeze": settings.freeze,
                                                "dataset": str(norm)})]
        if settings.scratch:
            starts.append(("scratch", "scratch", {"dataset": str(tgt_card)}))
        for init, tag, extra in starts:
            run, pos = _train(settings, {
                "model": model, "train": str(subset), "val": str(tgt_val),
                "out": str(out / "runs" / model / f"{tag}-k{k}"), **budget, **extra}, log)
            m = evaluate_once(run / "last.pt", tgt_val, out / "evals" / model / f"{tag}-k{k}",
                              device=settings.device)
            info = {**base, **pos, "train_samples": k}
            rows.append(_row(info, m, k=k, init=init, where="target val", ckpt=run / "last.pt"))
            log(f"{model}: {init} + K={k}: MAE {m['mae_mps']:.1f} m/s")
    return rows


def _name(ref: str) -> str:
    card = _card(ref)
    return card.parent.name if card is not None else ref


def _count(split: Path) -> int:
    return sum(len(open_npy(e.data)) for e in read_split(split))


def _row(common: dict[str, Any], m: dict[str, Any], *, k: int | str, init: str, where: str,
         ckpt: str | Path) -> dict[str, Any]:
    return {**common, "k": k, "init": init, "evaluated_on": where, "checkpoint": str(ckpt),
            "epochs": common.get("epoch"), "steps": common.get("step"),
            **{key: m[key] for key in ("samples", "mae", "rmse", "ssim", "mae_mps", "rmse_mps")}}


def transfer_markdown(rows: Sequence[dict[str, Any]], settings: TransferSettings) -> str:
    """A row per (model, K): target-val MAE/SSIM fine-tuned from the source model and scratch."""
    header = ["model", "K", "fine-tuned MAE m/s", "fine-tuned SSIM", "scratch MAE m/s",
              "scratch SSIM"]
    body: list[list[Any]] = []
    for model in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == model]
        for r in mine:
            if r["evaluated_on"] == "source val":
                body.append([model, "in-domain", f"{r['mae_mps']:.1f}", f"{r['ssim']:.4f}",
                             "—", "—"])
        for k in sorted({r["k"] for r in mine if r["evaluated_on"] == "target val"}):
            line: list[Any] = [model, str(k)]
            for init in ("source model", "scratch"):
                r = next((r for r in mine if r["k"] == k and r["init"] == init
                          and r["evaluated_on"] == "target val"), None)
                line += ["—", "—"] if r is None else [f"{r['mae_mps']:.1f}", f"{r['ssim']:.4f}"]
            body.append(line)
    tgt = next((r for r in rows if r["evaluated_on"] == "target val"), None)
    n_val = tgt["samples"] if tgt else settings.val_samples
    budget = (f"{settings.finetune_steps} iterations" if settings.finetune_steps
              else f"{settings.finetune_epochs or 'source'} epochs")
    trained = "; ".join(
        f"{r['model']} from {settings.source_checkpoints[r['model']]}"
        if r["model"] in settings.source_checkpoints
        else f"{r['model']} trained on {r['train_samples']} source samples"
        for r in rows if r["evaluated_on"] == "source val")
    intro = (f"Transfer {_name(settings.source)} -> {_name(settings.target)}: "
             f"{trained or 'no source model'}; evaluated on {n_val} target "
             f"validation samples (in-domain row: source validation). K = target training samples "
             f"used; fine-tuning (freeze: {settings.freeze}) and scratch runs take {budget} each "
             "and are scored with their final weights. MAE in m/s, SSIM in the OpenFWI "
             "convention.\n\n")
    return intro + markdown_table(header, body)
