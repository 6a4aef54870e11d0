"""Training configuration: one flat dataclass, reference defaults, TOML load/merge/dump.

:class:`TrainConfig` is the one source of every setting's default, per-model default, section
and help (the ``train`` flags and the bundled ``velocitygan/configs/*.toml`` derive from it).
Precedence (lowest first): model defaults < ``--config NAME|FILE.toml`` < command-line flags.
The TOML file may put keys at the top level or inside the section tables that
:func:`dump_toml` writes (``[run]``, ``[data]``, ``[model]``, ``[optim]``, ``[loss]``,
``[speed]``); an unknown key or section is an error that names it.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import read_toml
from ..models import CRITIC_NORMS

__all__ = ["CONFIG_DIR", "TrainConfig", "bundled_configs", "dump_toml", "load_toml_config",
           "model_defaults", "resolve_config"]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"  # bundled NAME.toml files

MODELS = ("velocitygan", "inversionnet")
TRISTATE = ("auto", "true", "false")
CHOICES: dict[str, tuple[str, ...]] = {
    "model": MODELS, "device": ("auto", "cpu", "cuda"), "channels_last": TRISTATE,
    "bf16": TRISTATE, "compile": TRISTATE, "nan_policy": ("stop", "skip"),
    "freeze": ("none", "encoder", "decoder"), "critic_norm": CRITIC_NORMS,
    "lr_schedule": ("constant", "cosine"), "progress": ("auto", "bar", "log", "off"),
}


def _f(section: str, default: Any, doc: str, inversionnet: Any = None) -> Any:
    """A field with its TOML section, help text and (if it differs) InversionNet's default."""
    kw = {"default_factory": lambda: list(default)} if isinstance(default, list) else {
        "default": default}
    models = {} if inversionnet is None else {"inversionnet": inversionnet}
    return field(metadata={"section": section, "doc": doc, "models": models}, **kw)


@dataclass
class TrainConfig:
    """Every setting of a training run: reference defaults of VelocityGAN and, where they
    differ, of InversionNet.

    ``batch_size`` is the GLOBAL batch: under ``torchrun`` each of K processes gets
    ``batch_size / K`` samples, so results do not depend on the number of processes.
    """

    # [run]
    model: str = _f("run", "velocitygan", "velocitygan (generator + WGAN-GP critic), inversionnet")
    out: str = _f("run", "", "run folder (config.toml, metrics.csv, best.pt, last.pt)")
    seed: int = _f("run", 0, "seeds model init, data order per epoch and GP factors per step")
    device: str = _f("run", "auto", "auto (cuda if available), cpu or cuda")
    epochs: int = _f("run", 500, "passes over the training split", inversionnet=120)
    max_steps: int = _f("run", 0, "stop after this many iterations in total (0 = no limit)")
    time_limit_min: float = _f("run", 0.0, "stop training after this many minutes (0 = no limit)")
    checkpoint_every_steps: int = _f("run", 0, "also write last.pt every K iterations (0 = off)")
    log_every_steps: int = _f("run", 50, "plain log line / TensorBoard scalars every K iterations")
    val_every_epochs: int = _f("run", 1, "validate every K epochs (and after the last)")
    bn_recompute_samples: int = _f("run", 2048, "at the end, BatchNorm statistics from this many "
                                   "training samples (0 = the running ones)")
    nan_policy: str = _f("run", "stop", "stop on NaN/Inf loss, or skip (and count) the batch")
    tensorboard: bool = _f("run", True, "TensorBoard event files (when installed)")
    progress: str = _f("run", "auto", "auto: bar on a terminal, log lines otherwise; bar, log, off")
    # [data]
    train: str = _f("data", "", "training split file (DATA<TAB>LABEL lines)")
    val: str = _f("data", "", "validation split file")
    dataset: str = _f("data", "flatvel-a", "benchmark name, dataset.json, FILE.toml#NAME")
    train_limit: int = _f("data", 0, "use only the first N training samples (0 = all)")
    val_limit: int = _f("data", 0, "use only the first N validation samples (0 = all)")
    batch_size: int = _f("data", 64, "global training batch (split across processes)",
                         inversionnet=256)
    val_batch_size: int = _f("data", 0, "validation batch (0 = batch_size)")
    workers: int = _f("data", -1, "DataLoader processes per training process (-1 = auto: none on "
                      "2 cores or fewer, where a loader takes a compute core, else 2)")
    preload: bool = _f("data", False, "read the splits into RAM once (fast epochs, needs memory)")
    cache_normalized: bool = _f("data", False, "keep normalised samples in RAM after their first "
                                "read (~1.4 MB each; needs workers = 0 or -1)")
    augment_noise_snr_db: float = _f("data", math.inf, "add noise at this SNR in dB (inf = off)")
    augment_trace_dropout: float = _f("data", 0.0, "fraction of receiver traces zeroed (0 = off)")
    augment_flip: bool = _f("data", False, "random left-right flip of data and label")
    augment_prob: float = _f("data", 0.5, "chance per sample of noise, and of trace dropout")
    # [model]
    width: float = _f("model", 1.0, "generator (InversionNet) channel multiplier")
    critic_width: float = _f("model", 1.0, "critic channel multiplier")
    critic_norm: str = _f("model", "batch", "critic normalisation: batch (reference), none, layer, "
                          "instance, spectral")
    sync_batchnorm: bool = _f("model", False, "SyncBatchNorm in the generator under DDP")
    init_from: str = _f("model", "", "start the generator from this checkpoint (fine-tuning)")
    freeze: str = _f("model", "none", "keep this generator part fixed: none, encoder, decoder")
    # [optim]
    lr: float = _f("optim", 1e-4, "generator AdamW learning rate")
    betas: list = _f("optim", [0.0, 0.9], "generator AdamW betas", inversionnet=[0.9, 0.999])
    weight_decay: float = _f("optim", 1e-4, "generator AdamW weight decay")
    unfrozen_lr: float = _f("optim", 0.0, "lr of the unfrozen generator part when freeze != none "
                            "(0 = lr)")
    lr_schedule: str = _f("optim", "constant", "constant (reference) or cosine decay to "
                          "min_lr_ratio * lr over the run")
    warmup_steps: int = _f("optim", 0, "linear lr warm-up iterations (cosine schedule)")
    min_lr_ratio: float = _f("optim", 0.01, "final lr / lr of the cosine schedule")
    ema_decay: float = _f("optim", 0.0, "the final generator is the moving average of its weights "
                          "with this decay per generator step (0 = off)")
    critic_lr: float = _f("optim", 1e-4, "critic AdamW learning rate")
    critic_betas: list = _f("optim", [0.0, 0.9], "critic AdamW betas")
    critic_weight_decay: float = _f("optim", 1e-4, "critic AdamW weight decay")
    # [loss]
    l1_weight: float = _f("loss", 100.0, "weight of the L1 content loss (normalised units)",
                          inversionnet=1.0)
    l2_weight: float = _f("loss", 100.0, "weight of the MSE content loss", inversionnet=0.0)
    adv_weight: float = _f("loss", 1.0, "weight of the adversarial term -mean D(G(x))",
                           inversionnet=0.0)
    gp_weight: float = _f("loss", 10.0, "weight of the WGAN-GP gradient penalty")
    n_critic: int = _f("loss", 5, "generator steps every n_critic-th iteration")
    adv_start_steps: int = _f("loss", 0, "iterations of content loss alone (no critic steps, a "
                              "generator step each) before the adversarial term starts")
    # [speed]
    channels_last: str = _f("speed", "auto", "channels_last memory format: auto, true, false")
    bf16: str = _f("speed", "auto", "bfloat16 autocast: auto, true, false")
    compile: str = _f("speed", "auto", "torch.compile the generator forward: auto (= off), "
                      "true, false")
    reuse_host_memory: bool = _f("speed", True, "keep freed CPU memory for reuse (glibc): "
                                 "no page faults on every step")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (TOML/JSON/checkpoint friendly)."""
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in fields(TrainConfig)}


def model_defaults(model: str) -> dict[str, Any]:
    """Reference defaults of ``model`` that differ from VelocityGAN's."""
    return {k: f.metadata["models"][model] for k, f in FIELDS.items()
            if model in f.metadata["models"]}


def bundled_configs() -> list[str]:
    """Names of the configurations shipped with the package (``--config NAME``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))


SECTIONS = sorted({f.metadata["section"] for f in FIELDS.values()})


def _coerce(key: str, value: Any, source: str) -> Any:
    """Check and convert one value to the field's type; raise ConfigError naming the key."""
    if key not in FIELDS:
        raise ConfigError(f"{source}: unknown setting {key!r} (the settings: "
                          f"{CONFIG_DIR / 'openfwi.toml'})")
    default = FIELDS[key].default
    if key in CHOICES and isinstance(value, bool):
        value = "true" if value else "false"
    if default is dataclasses.MISSING:  # a list (default_factory): two numbers
        try:
            pair = [float(v) for v in value] if isinstance(value, list | tuple) else []
        except (TypeError, ValueError):
            pair = []
        if len(pair) != 2:
            raise ConfigError(f"{source}: {key} = {value!r} should be a list of two numbers")
        return pair
    want = type(default)
    ok = isinstance(value, int | float) if want is float else isinstance(value, want)
    if not ok or (want is not bool and isinstance(value, bool)):
        raise ConfigError(f"{source}: {key} = {value!r} should be a {want.__name__}")
    value = float(value) if want is float else value
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{source}: {key} = {value!r}; choose one of {', '.join(CHOICES[key])}")
    return value


def load_toml_config(path: str | Path) -> dict[str, Any]:
    """Read a training TOML file, or a bundled config by name, into a flat, checked dict."""
    path = Path(path).expanduser()
    if not path.exists() and str(path) in bundled_configs():
        path = CONFIG_DIR / f"{path}.toml"
    doc = read_toml(path, f"config file or bundled config ({', '.join(bundled_configs())})")
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        if isinstance(value, dict):
            if key not in SECTIONS:
                raise ConfigError(f"{path}: unknown section [{key}] (use {', '.join(SECTIONS)})")
            for k, v in value.items():
                flat[k] = _coerce(k, v, f"{path} [{key}]")
        else:
            flat[key] = _coerce(key, value, str(path))
    return flat


def check_overrides(overrides: dict[str, Any], source: str = "flag") -> dict[str, Any]:
    """Check a dict of settings (e.g. from flags); ``None`` values are dropped."""
    return {k: _coerce(k, v, source) for k, v in overrides.items() if v is not None}


def resolve_config(*, file: str | Path | None = None, overrides: dict[str, Any] | None = None,
                   base: dict[str, Any] | None = None) -> TrainConfig:
    """Merge defaults < ``base`` (e.g. a resumed run's config) < TOML ``file`` < ``overrides``.

    The model named by the highest-precedence layer picks the model-specific defaults.
    """
    layers = [check_overrides(base or {}, "saved config")]
    if file is not None:
        layers.append(load_toml_config(file))
    layers.append(check_overrides(overrides or {}))
    model = next((lay["model"] for lay in reversed(layers) if "model" in lay), "velocitygan")
    merged = model_defaults(model)
    for layer in layers:
        merged.update(layer)
    merged["model"] = model
    cfg = TrainConfig(**merged)
    _validate(cfg)
    return cfg


def _validate(cfg: TrainConfig) -> None:
    def need(keys: str, ok: Callable[[Any], bool], rule: str) -> None:
        for key in keys.split():
            if not ok(getattr(cfg, key)):  # the range tests also refuse NaN
                raise ConfigError(f"{key} = {getattr(cfg, key)} {rule}")

    need("epochs batch_size n_critic val_every_epochs log_every_steps", lambda v: v >= 1,
         "must be >= 1")
    need("warmup_steps max_steps checkpoint_every_steps train_limit val_limit val_batch_size "
         "bn_recompute_samples adv_start_steps",
         lambda v: v >= 0, "must be >= 0")
    need("workers", lambda v: v >= -1, "must be >= 0, or -1 (auto)")
    need("time_limit_min", lambda v: 0 <= v < math.inf, "must be a number >= 0 (0 = no limit)")
    need("seed", lambda v: -2**63 <= v < 2**63, "must fit in 64 bits (|seed| < 2**63)")
    need("weight_decay critic_weight_decay unfrozen_lr l1_weight l2_weight adv_weight gp_weight",
         lambda v: 0 <= v < math.inf, "must be a finite number >= 0")
    need("min_lr_ratio augment_prob", lambda v: 0 <= v <= 1, "must be in [0, 1]")
    need("ema_decay", lambda v: 0 <= v < 1, "must be in [0, 1)")
    for key in ("betas", "critic_betas"):
        if not all(0 <= b < 1 for b in getattr(cfg, key)):
            raise ConfigError(f"{key} = {getattr(cfg, key)}: each must be in [0, 1)")
    need("lr critic_lr width critic_width", lambda v: 0 < v < math.inf,
         "must be a finite number > 0")
    if cfg.cache_normalized and cfg.workers > 0:
        raise ConfigError("cache_normalized needs workers = 0 (worker processes do not share "
                          "a cache); set workers = 0 or cache_normalized = false")
    need("augment_noise_snr_db", lambda v: -math.inf < v <= math.inf,
         "must be a number of dB (inf = off)")
    need("augment_trace_dropout", lambda v: 0 <= v < 1, "must be in [0, 1)")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # TOML spells inf, -inf and nan as Python does
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def dump_toml(cfg: TrainConfig, *, header: str = "") -> str:
    """The configuration as TOML text, one ``[section]`` per concern, a comment per key."""
    lines = [f"# {line}" for line in header.splitlines()]
    for section in ("run", "data", "model", "optim", "loss", "speed"):
        lines += ["", f"[{section}]"]
        for f in fields(cfg):
            if f.metadata["section"] == section:
                lines.append(f"{f.name} = {_toml_value(getattr(cfg, f.name))}"
                             f"  # {f.metadata['doc']}")
    return "\n".join(lines).lstrip("\n") + "\n"
