"""The losses by their Keras identifiers: options, label preparation and kernel of each."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.errors import InvalidInputError
from service.losses._crossentropy import (
    binary_crossentropy,
    categorical_crossentropy,
    sparse_categorical_crossentropy,
)
from service.losses._focal import binary_focal_crossentropy, categorical_focal_crossentropy
from service.losses._hinge import categorical_hinge, hinge, signed_labels, squared_hinge
from service.losses._inputs import Labels, Predictions, dense_labels, sparse_labels
from service.losses._parallel import Kernel

Validator = Callable[[str, Any], Any]
LabelPreparer = Callable[[object, Predictions, Mapping[str, Any]], Labels]


def _fraction(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}", field=name)
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidInputError(f"{name} must be a finite number >= 0, got {value!r}", field=name)
    return float(value)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidInputError(f"{name} must be true or false, got {value!r}", field=name)
    return value


def _class_id(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInputError(f"{name} must be an integer class id, got {value!r}", field=name)
    return int(value)


def _class_weights(name: str, value: Any) -> float | list[float]:
    """A scalar, or one non-negative weight per class (checked against C by the loss)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _non_negative(name, value)
    try:
        return [_non_negative(name, v) for v in value]
    except TypeError:
        raise InvalidInputError(
            f"{name} must be a number or a list of numbers, got {value!r}", field=name
        ) from None


def _targets(labels: object, predictions: Predictions, _: Mapping[str, Any]) -> Labels:
    return Labels(dense_labels(labels, predictions, unit_interval=True))


def _distribution_targets(
    labels: object, predictions: Predictions, options: Mapping[str, Any]
) -> Labels:
    """Targets for losses that renormalise probability rows, which therefore need a
    positive row sum; per-class ``alpha`` must match the number of classes."""
    if not predictions.from_logits:
        empty = np.flatnonzero(predictions.values.sum(axis=1) == 0)
        if empty.size:
            raise InvalidInputError(
                f"probabilities row {int(empty[0])} sums to 0; each row needs a positive sum",
                field="probabilities",
            )
    alpha = options.get("alpha")
    if isinstance(alpha, list) and len(alpha) != predictions.num_classes:
        raise InvalidInputError(
            f"alpha must be a number or one weight per class ({predictions.num_classes}), "
            f"got {len(alpha)} weights",
            field="alpha",
        )
    return _targets(labels, predictions, options)


def _class_ids(labels: object, predictions: Predictions, options: Mapping[str, Any]) -> Labels:
    return sparse_labels(labels, predictions, options.get("ignore_class"))


def _scores(labels: object, predictions: Predictions, _: Mapping[str, Any]) -> Labels:
    return Labels(dense_labels(labels, predictions, unit_interval=False))


def _signed_scores(labels: object, predictions: Predictions, _: Mapping[str, Any]) -> Labels:
    return Labels(signed_labels(dense_labels(labels, predictions, unit_interval=False)))


@dataclass(frozen=True)
class LossSpec:
    """One loss: its options, how its labels are validated, and the kernel computing it."""

    name: str
    kernel: Kernel
    prepare_labels: LabelPreparer
    options: Mapping[str, Validator] = field(default_factory=dict)
    label_options: frozenset[str] = frozenset()
    """Options consumed while preparing labels rather than by the kernel."""

    def bind(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Validate the given options (``None`` means "use the default")."""
        bound: dict[str, Any] = {}
        for key, value in options.items():
            if value is None:
                continue
            if key not in self.options:
                accepted = ", ".join(sorted(self.options)) or "none"
                raise InvalidInputError(
                    f"{self.name} does not take option {key!r} (accepted: {accepted})", field=key
                )
            bound[key] = self.options[key](key, value)
        return bound

    def kernel_options(self, bound: Mapping[str, Any]) -> dict[str, Any]:
        """The bound options the kernel takes."""
        return {k: v for k, v in bound.items() if k not in self.label_options}


_SMOOTHING: Mapping[str, Validator] = {"label_smoothing": _fraction}

_SPECS = (
    LossSpec(
        "categorical_crossentropy", categorical_crossentropy, _distribution_targets, _SMOOTHING
    ),
    LossSpec(
        "sparse_categorical_crossentropy",
        sparse_categorical_crossentropy,
        _class_ids,
        {"ignore_class": _class_id},
        frozenset({"ignore_class"}),
    ),
    LossSpec("binary_crossentropy", binary_crossentropy, _targets, _SMOOTHING),
    LossSpec(
        "binary_focal_crossentropy",
        binary_focal_crossentropy,
        _targets,
        {
            **_SMOOTHING,
            "alpha": _fraction,
            "gamma": _non_negative,
            "apply_class_balancing": _flag,
        },
    ),
    LossSpec(
        "categorical_focal_crossentropy",
        categorical_focal_crossentropy,
        _distribution_targets,
        {**_SMOOTHING, "alpha": _class_weights, "gamma": _non_negative},
    ),
    LossSpec("hinge", hinge, _signed_scores),
    LossSpec("squared_hinge", squared_hinge, _signed_scores),
    LossSpec("categorical_hinge", categorical_hinge, _scores),
)

LOSSES: Mapping[str, LossSpec] = {spec.name: spec for spec in _SPECS}
"""Every supported loss by its Keras identifier."""


@dataclass(frozen=True)
class LossOption:
    """How a loss option travels in requests: its JSON type and what it means."""

    annotation: Any
    description: str


LOSS_OPTIONS: Mapping[str, LossOption] = {
    "label_smoothing": LossOption(float, "Label smoothing in [0, 1] (cross-entropy losses)."),
    "alpha": LossOption(
        float | list[float],
        "Focal weighting: a number in [0, 1] (binary), or a number or one weight per class "
        "(categorical).",
    ),
    "gamma": LossOption(float, "Focusing parameter >= 0 (focal losses)."),
    "apply_class_balancing": LossOption(bool, "Weight positives by alpha (binary focal)."),
    "ignore_class": LossOption(int, "Class id whose rows do not count (sparse cross-entropy)."),
}
"""Every option any loss takes, by name: transports accept exactly these (each loss checks
which of them it takes)."""


def get_loss(name: str) -> LossSpec:
    """The loss called ``name``, or :class:`InvalidInputError` listing the valid names."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise InvalidInputError(
            f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}", field="loss"
        ) from None
