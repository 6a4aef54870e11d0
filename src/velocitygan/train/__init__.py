"""Training of VelocityGAN and InversionNet (one code path), on CPU, one GPU or many.

``train(config)`` runs a training job into a run folder (``config.toml``, ``metrics.csv``,
``best.pt``, ``last.pt``, TensorBoard events); the ``velocitygan train`` command wraps it.
"""

from .config import TrainConfig, dump_toml, load_toml_config, model_defaults, resolve_config
from .run import fit, train

__all__ = ["TrainConfig", "dump_toml", "fit", "load_toml_config", "model_defaults",
           "resolve_config", "train"]
