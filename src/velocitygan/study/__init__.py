"""Studies of the paper's title: robustness to perturbed inputs and transfer across geology.

* :func:`run_robustness`: evaluate checkpoints on noisy / incomplete / shifted inputs;
* :func:`run_transfer`: train on one velocity family, evaluate on another before and after
  fine-tuning on K target samples, against training from scratch on the same K samples.
"""

from .robustness import Condition, robustness_conditions, run_robustness
from .transfer import TransferSettings, prepare_dataset, run_transfer, write_subset

__all__ = ["Condition", "robustness_conditions", "run_robustness", "TransferSettings",
           "prepare_dataset", "run_transfer", "write_subset"]
