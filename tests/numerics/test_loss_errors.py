"""Bad input raises the one domain error with a message that names the problem."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.errors import InvalidInputError
from service.losses import LOSSES, compute_loss

LOGITS = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]], np.float32)
PROBS = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]], np.float32)
ONEHOT = np.eye(3, dtype=np.float32)[[1, 2]]

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("unknown loss", {"name": "kl_divergence"}, r"unknown loss 'kl_divergence'.*hinge"),
    ("non-string loss", {"name": 3}, "unknown loss"),
    ("neither input", {"logits": None}, "exactly one of logits or probabilities"),
    ("both inputs", {"probabilities": PROBS}, "exactly one of logits or probabilities"),
    ("unknown reduction", {"reduction": "avg"}, r"unknown reduction 'avg'.*mean_with_sample"),
    ("label rows", {"labels": [1, 2, 0]}, r"one row per prediction \(2\), got 3"),
    ("label shape", {"labels": np.ones((2, 4))}, r"shape \[2, 3\], got shape \[2, 4\]"),
    ("3-D logits", {"logits": np.ones((2, 3, 1))}, r"shape \[N, C\].*\[2, 3, 1\]"),
    ("empty logits", {"logits": np.ones((0, 3))}, r"N, C >= 1"),
    ("string logits", {"logits": [["a", "b", "c"]] * 2}, "logits must be numeric"),
    ("ragged logits", {"logits": [[1.0, 2.0], [1.0]]}, "rectangular"),
    ("nan logits", {"logits": np.array([[np.nan, 0, 0], [0, 0, 0]])}, "logits must be finite"),
    ("inf logits", {"logits": np.array([[np.inf, 0, 0], [0, 0, 0]])}, "logits must be finite"),
    ("nan labels", {"labels": np.array([[np.nan, 1, 0], [0, 0, 1]])}, "labels must be finite"),
    (
        "probability > 1",
        {"logits": None, "probabilities": PROBS * 2},
        r"probabilities must lie within \[0, 1\]",
    ),
    ("label > 1", {"labels": ONEHOT * 2}, r"labels must lie within \[0, 1\]"),
    ("class id range", {"labels": [1, 3]}, r"class-id labels must lie in \[0, 3\), got 3"),
    ("negative class id", {"labels": [-1, 0]}, r"must lie in \[0, 3\), got -1"),
    ("fractional class id", {"labels": [0.5, 1.0]}, "class-id labels must be integers"),
    ("negative weight", {"sample_weight": [1.0, -1.0]}, "sample_weight must be >= 0"),
    ("weight shape", {"sample_weight": [1.0, 1.0, 1.0]}, r"shape \[2\], got shape \[3\]"),
    ("nan weight", {"sample_weight": [1.0, np.nan]}, "sample_weight must be finite"),
    ("unknown option", {"gamma": 2.0}, r"categorical_crossentropy does not take option 'gamma'"),
    ("smoothing range", {"label_smoothing": 1.5}, r"label_smoothing must be a number in \[0, 1\]"),
    ("gradient flag", {"return_gradient": "yes"}, "return_gradient must be true or false"),
]


@pytest.mark.parametrize(("case", "overrides", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_rejected(case: str, overrides: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "name": "categorical_crossentropy",
        "labels": ONEHOT,
        "logits": LOGITS,
    }
    arguments.update(overrides)
    with pytest.raises(InvalidInputError, match=message):
        compute_loss(arguments.pop("name"), arguments.pop("labels"), **arguments)


@pytest.mark.parametrize(
    ("name", "labels", "options", "message"),
    [
        ("sparse_categorical_crossentropy", ONEHOT, {}, "use categorical_crossentropy"),
        ("sparse_categorical_crossentropy", [0, 5], {}, r"\[0, 3\), got 5"),
        ("sparse_categorical_crossentropy", [0, 1], {"ignore_class": 1.5}, "integer class id"),
        ("binary_focal_crossentropy", ONEHOT, {"gamma": -1}, "gamma must be a finite number >= 0"),
        ("binary_focal_crossentropy", ONEHOT, {"alpha": 2}, r"alpha must be a number in \[0, 1\]"),
        ("binary_focal_crossentropy", ONEHOT, {"apply_class_balancing": 1}, "true or false"),
        ("categorical_focal_crossentropy", ONEHOT, {"alpha": [0.1, 0.2]}, "one weight per class"),
        ("categorical_focal_crossentropy", ONEHOT, {"alpha": "x"}, "alpha must be a finite"),
        ("hinge", ONEHOT, {"label_smoothing": 0.1}, r"does not take option.*accepted: none"),
    ],
)
def test_bad_options_and_labels(
    name: str, labels: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        compute_loss(name, labels, logits=LOGITS, **options)


def test_error_names_the_field() -> None:
    with pytest.raises(InvalidInputError) as caught:
        compute_loss("categorical_crossentropy", ONEHOT, logits=LOGITS, sample_weight=[-1, 1])
    assert caught.value.field == "sample_weight"


def test_categorical_probabilities_row_of_zeros_is_rejected_not_nan() -> None:
    zeros = np.array([[0.0, 0.0, 0.0], [0.2, 0.3, 0.5]], np.float32)
    for name in ("categorical_crossentropy", "categorical_focal_crossentropy"):
        with pytest.raises(InvalidInputError, match="probabilities row 0 sums to 0"):
            compute_loss(name, ONEHOT, probabilities=zeros)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_inputs_are_not_modified(name: str) -> None:
    logits, labels = LOGITS.copy(), np.array([1, 2])
    compute_loss(name, labels, logits=logits, return_gradient=True, sample_weight=[1.0, 2.0])
    np.testing.assert_array_equal(logits, LOGITS)
    np.testing.assert_array_equal(labels, [1, 2])
