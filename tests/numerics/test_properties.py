"""Property-based checks (hypothesis) of the activations and losses."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from service.activations import log_softmax, sigmoid, softmax
from service.losses import LOSSES, REDUCTIONS, compute_loss

F32_MAX = float(np.finfo(np.float32).max)


def logit_matrices(bound: float = 3e38) -> st.SearchStrategy[np.ndarray]:
    shapes = st.tuples(st.integers(1, 8), st.integers(1, 12))
    limit = float(np.float32(bound))
    elements = st.floats(-limit, limit, width=32, allow_nan=False, allow_infinity=False)
    return shapes.flatmap(lambda shape: arrays(np.float32, shape, elements=elements))


@given(logit_matrices())
def test_softmax_rows_are_distributions(x: np.ndarray) -> None:
    p = softmax(x)
    assert np.isfinite(p).all()
    assert ((p >= 0) & (p <= 1)).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    spread = x.max(axis=1).astype(np.float64) - x.min(axis=1)
    assert np.isfinite(log_softmax(x)[spread < F32_MAX]).all()


@given(logit_matrices())
def test_softmax_preserves_argmax(x: np.ndarray) -> None:
    p = softmax(x)
    rows = np.arange(len(x))
    np.testing.assert_array_equal(p[rows, np.argmax(x, axis=1)], p.max(axis=1))


@given(logit_matrices(bound=1e3), st.floats(-1e3, 1e3, width=32))
def test_softmax_is_shift_invariant(x: np.ndarray, shift: float) -> None:
    np.testing.assert_allclose(softmax(x + np.float32(shift)), softmax(x), atol=2e-3, rtol=0)


@given(logit_matrices())
def test_sigmoid_is_bounded_and_monotone(x: np.ndarray) -> None:
    s = sigmoid(x)
    assert ((s >= 0) & (s <= 1)).all()
    order = np.argsort(x, axis=None)
    assert (np.diff(s.ravel()[order]) >= 0).all()


def _labels_for(name: str, x: np.ndarray, data: st.DataObject) -> np.ndarray:
    n, c = x.shape
    if name == "sparse_categorical_crossentropy" or (name.startswith("categorical") and c > 1):
        return np.asarray(data.draw(st.lists(st.integers(0, c - 1), min_size=n, max_size=n)))
    soft = st.floats(0, 1, width=32)
    return data.draw(arrays(np.float32, (n, c), elements=soft))


@given(
    name=st.sampled_from(sorted(LOSSES)),
    reduction=st.sampled_from(REDUCTIONS),
    x=logit_matrices(bound=1e15),
    data=st.data(),
)
def test_losses_are_finite_and_non_negative(
    name: str, reduction: str, x: np.ndarray, data: st.DataObject
) -> None:
    labels = _labels_for(name, x, data)
    result = compute_loss(name, labels, logits=x, reduction=reduction, return_gradient=True)
    assert np.isfinite(result.per_sample).all()
    assert (result.per_sample >= 0).all()
    assert np.isfinite(result.value).all()
    assert result.gradient is not None
    assert np.isfinite(result.gradient).all()


@given(
    name=st.sampled_from(sorted(LOSSES)),
    x=logit_matrices(bound=50),
    data=st.data(),
)
def test_probabilities_path_is_finite(name: str, x: np.ndarray, data: st.DataObject) -> None:
    labels = _labels_for(name, x, data)
    probabilities = sigmoid(x) if "binary" in name or name.endswith("hinge") else softmax(x)
    result = compute_loss(name, labels, probabilities=probabilities, reduction="none")
    assert np.isfinite(result.per_sample).all()
    assert (result.per_sample >= 0).all()
