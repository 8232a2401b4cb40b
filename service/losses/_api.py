"""``compute_loss``: the single entry point every transport uses to evaluate a loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import InvalidInputError
from service.losses._inputs import FloatArray, as_predictions, sample_weights
from service.losses._parallel import default_threads, run_by_rows
from service.losses._reduction import check_reduction, reduce
from service.losses._registry import get_loss


@dataclass(frozen=True)
class LossResult:
    """A computed loss."""

    name: str
    reduction: str
    value: float | FloatArray
    """The reduced loss, or the weighted per-sample array for ``reduction="none"``."""
    per_sample: FloatArray
    """Weighted per-sample losses, shape ``[N]`` (Keras's ``reduction="none"`` output)."""
    gradient: FloatArray | None
    """d value / d logits with the logits' shape; for ``"none"``, row i is the gradient of
    sample i's own loss. ``None`` unless requested and computed from logits."""


def compute_loss(
    name: str,
    labels: Any,
    *,
    logits: Any = None,
    probabilities: Any = None,
    reduction: str = "sum_over_batch_size",
    sample_weight: Any = None,
    return_gradient: bool = False,
    threads: int | None = None,
    **options: Any,
) -> LossResult:
    """Evaluate the Keras loss ``name`` on a batch, with Keras 3 (TensorFlow backend) semantics.

    Args:
        name: a Keras loss identifier, e.g. ``"sparse_categorical_crossentropy"``.
        labels: class ids ``[N]`` or targets with the predictions' shape ``[N, C]``
            (one-hot, multi-hot or soft). Class ids are one-hot encoded for dense losses.
        logits: raw model outputs ``[N, C]`` (or ``[N]``); exact log-space math.
        probabilities: activated outputs in [0, 1]; clipped to [1e-7, 1 − 1e-7] as Keras does.
            Exactly one of ``logits`` and ``probabilities`` must be given.
        reduction: ``none``, ``sum``, ``sum_over_batch_size`` (= ``mean``) or
            ``mean_with_sample_weight``.
        sample_weight: scalar or ``[N]`` non-negative weights.
        return_gradient: also compute d value / d logits (only when logits are given).
        threads: most threads a large batch is split over (default: the usable CPUs).
        **options: the loss's own options (``label_smoothing``, ``alpha``, ``gamma``,
            ``apply_class_balancing``, ``ignore_class``); ``None`` means the default.

    Raises:
        InvalidInputError: for anything malformed, with a message naming the field.
    """
    spec = get_loss(name)
    check_reduction(reduction)
    bound = spec.bind(options)
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise InvalidInputError("threads must be a positive integer", field="threads")
    if not isinstance(return_gradient, bool):
        raise InvalidInputError("return_gradient must be true or false", field="return_gradient")
    predictions = as_predictions(logits, probabilities)
    weights = sample_weights(sample_weight, predictions.values.shape[0])
    prepared = spec.prepare_labels(labels, predictions, bound)
    output = run_by_rows(
        spec.kernel,
        prepared,
        predictions.values,
        threads or default_threads(),
        from_logits=predictions.from_logits,
        want_gradient=return_gradient and predictions.from_logits,
        **spec.kernel_options(bound),
    )
    reduced = reduce(output.per_sample, weights, prepared.mask, reduction)
    gradient = None
    if output.gradient is not None:
        gradient = (output.gradient * reduced.scale[:, None]).astype(np.float32, copy=False)
        gradient = gradient.reshape(predictions.original_shape)
    return LossResult(name, reduction, reduced.value, reduced.per_sample, gradient)
