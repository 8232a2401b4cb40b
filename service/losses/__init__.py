"""Losses for batches of labels, matching Keras 3 / TensorFlow to float32 precision.

>>> from service.losses import compute_loss
>>> compute_loss("sparse_categorical_crossentropy", [0], logits=[[2.0, 0.0]]).value
0.12692804634571075
"""

from service.losses._api import LossResult, compute_loss
from service.losses._inputs import numeric_array, require_finite, require_unit_interval
from service.losses._reduction import REDUCTIONS
from service.losses._registry import LOSS_OPTIONS, LOSSES, LossOption

__all__ = [
    "LOSSES",
    "LOSS_OPTIONS",
    "REDUCTIONS",
    "LossOption",
    "LossResult",
    "compute_loss",
    "numeric_array",
    "require_finite",
    "require_unit_interval",
]
