"""Dataset-scale evaluation of a model: loss, accuracy, top-5, calibration, per-class errors.

``python -m service.evaluate --dataset synthetic --out runs/eval`` (see docs/evaluation.md).
Chunks of rows are tallied anywhere (threads here, or Ray actors) and their exact sums added.
This package needs no TensorFlow; Ray is an optional extra.
"""

from service.evaluate.metrics import ECE_BINS, Tally, classification_metrics

__all__ = ["ECE_BINS", "Tally", "classification_metrics"]
