"""Temperature scaling fitted by exact NLL minimisation (Guo et al., 2017).

With β = 1/T, the negative log-likelihood of class ids ``y`` under ``softmax(β z)`` is
``NLL(β) = Σ_i [logsumexp(β z_i) − β z_i,y]``: convex in β, with first derivative
``Σ_i (E_p[z_i] − z_i,y)`` and second ``Σ_i Var_p[z_i]`` (p = softmax(β z_i)). All three are
sums over rows, so :func:`nll_terms` of each chunk add up to those of the whole set, and the
safeguarded Newton iteration of :func:`fit_temperature` needs only those sums.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "MAX_TEMPERATURE",
    "MIN_TEMPERATURE",
    "Chunks",
    "NllTerms",
    "TemperatureFit",
    "check_rows",
    "fit_temperature",
    "nll_terms",
]

MIN_TEMPERATURE = 1e-3
MAX_TEMPERATURE = 1e3
"""The range a fitted temperature is kept in (a fit at a bound says so)."""
_BETA_MIN, _BETA_MAX = 1 / MAX_TEMPERATURE, 1 / MIN_TEMPERATURE

Chunks = Callable[[], Iterable[tuple[npt.NDArray[np.floating], npt.NDArray[np.integer]]]]
"""A fresh pass over the rows, as (logits ``[n, C]``, class ids ``[n]``) chunks."""


@dataclass(frozen=True)
class NllTerms:
    """Sums over rows at one β: the NLL and its first and second derivatives in β."""

    rows: int
    nll: float
    gradient: float
    curvature: float

    def __add__(self, other: NllTerms) -> NllTerms:
        return NllTerms(
            self.rows + other.rows,
            self.nll + other.nll,
            self.gradient + other.gradient,
            self.curvature + other.curvature,
        )


def check_rows(
    logits: npt.NDArray[np.floating], labels: npt.NDArray[np.integer], first_row: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.intp]]:
    """``logits`` as finite float64 ``[n, C]`` and ``labels`` as class ids ``[n]`` in
    ``0..C-1``; anything else raises :class:`ValueError` naming the row (counted from
    ``first_row``)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    if z.ndim != 2 or y.shape != z.shape[:1]:
        raise ValueError(f"expected logits [n, C] and labels [n], got {z.shape} and {y.shape}")
    if len(y) and z.shape[1] == 0:
        raise ValueError("logits have no classes")
    if len(y) and y.dtype.kind not in "iu":
        raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    bad = np.flatnonzero((y < 0) | (y >= z.shape[1]))
    if len(bad):
        row = int(bad[0])
        raise ValueError(
            f"label {y[row]} at row {first_row + row} is not a class id in 0..{z.shape[1] - 1}"
        )
    if not np.isfinite(z).all():
        row = int(np.flatnonzero(~np.isfinite(z).all(axis=1))[0])
        raise ValueError(f"logits at row {first_row + row} are not all finite")
    return z, y.astype(np.intp, copy=False)


def nll_terms(
    logits: npt.NDArray[np.floating], labels: npt.NDArray[np.integer], beta: float
) -> NllTerms:
    """The sums of ``logits`` ``[n, C]`` and class ids ``labels`` ``[n]`` at β (float64)."""
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta must be a finite number > 0, got {beta!r}")
    return _terms(*check_rows(logits, labels), beta)


def _terms(z: npt.NDArray[np.float64], y: npt.NDArray[np.intp], beta: float) -> NllTerms:
    if not len(y):
        return NllTerms(0, 0.0, 0.0, 0.0)
    # Shifted by the row maximum (β > 0 keeps it the maximum of β z): every exponent is ≤ 0.
    z = z - z.max(axis=1, keepdims=True)
    p = beta * z
    np.exp(p, out=p)
    total = p.sum(axis=1)
    p /= total[:, None]
    z_y = z[np.arange(len(y)), y]
    mean = np.einsum("ij,ij->i", p, z)
    z -= mean[:, None]  # two-pass variance: E_p[(z − E_p z)²] does not cancel
    z *= z
    variance = np.einsum("ij,ij->i", p, z)
    return NllTerms(
        rows=len(y),
        nll=float(np.sum(np.log(total) - beta * z_y)),
        gradient=float(np.sum(mean - z_y)),
        curvature=float(np.sum(variance)),
    )


@dataclass(frozen=True)
class TemperatureFit:
    """A fitted temperature and how the fit went."""

    temperature: float
    rows: int
    iterations: int
    """Passes over the rows."""
    converged: bool
    at_bound: bool
    """The minimum lies at (or beyond) :data:`MIN_TEMPERATURE` or :data:`MAX_TEMPERATURE`."""
    nll_before: float
    """Mean NLL at T = 1."""
    nll_after: float
    """Mean NLL at the fitted T."""


def _pass(chunks: Chunks, beta: float) -> NllTerms:
    total, first_row = NllTerms(0, 0.0, 0.0, 0.0), 0
    for logits, labels in chunks():
        z, y = check_rows(logits, labels, first_row)
        total, first_row = total + _terms(z, y, beta), first_row + len(y)
    return total


def fit_temperature(
    chunks: Chunks, *, tolerance: float = 1e-12, max_iterations: int = 60
) -> TemperatureFit:
    """The T minimising the NLL of every row ``chunks()`` yields (one pass per iteration).

    Safeguarded Newton on β = 1/T from β = 1 (so the first pass gives the NLL at T = 1). The
    minimum stays bracketed by the signs of the gradients seen; a Newton step that leaves the
    bracket, or is no shorter than the step before it (the crawl of a flat, nearly separable
    NLL), is replaced by the untried bound on the downhill side if there is one, else by the
    geometric mean of the bracket. It stops when the Newton step is below ``tolerance`` · β,
    or the gradient below ``tolerance`` · rows / β. A minimum at or beyond a bound (separable
    data) stops there with ``at_bound``; rows whose NLL does not depend on T (every logit of
    each row equal) give T = 1, converged, not at a bound. Out of iterations, it returns the
    lowest NLL seen, not converged. No rows raise :class:`ValueError`.
    """
    if not tolerance > 0 or max_iterations < 1:
        raise ValueError("tolerance must be > 0 and max_iterations ≥ 1")
    lo, hi = _BETA_MIN, _BETA_MAX
    lo_tried = hi_tried = False
    beta, last_step = 1.0, np.inf
    converged = at_bound = False
    for iteration in range(1, max_iterations + 1):
        terms = _pass(chunks, beta)
        if iteration == 1:
            if not terms.rows:
                raise ValueError("no rows to fit a temperature to")
            first = best = (beta, terms)
        elif terms.rows != first[1].rows:
            raise ValueError(f"chunks() gave {first[1].rows} rows, then {terms.rows}")
        best = min(best, (beta, terms), key=lambda point: point[1].nll)
        g, h = terms.gradient, terms.curvature
        if g > 0:
            hi, hi_tried = beta, True
        elif g < 0:
            lo, lo_tried = beta, True
        at_bound = (beta == _BETA_MAX and g <= 0) or (beta == _BETA_MIN and g >= 0)
        newton = beta - g / h if h > 0 else (np.inf if g < 0 else 0.0)
        if (
            at_bound
            or abs(g) * beta <= tolerance * terms.rows
            or abs(newton - beta) <= tolerance * beta
            or hi <= lo * (1 + tolerance)
        ):
            converged = True
            break
        if lo < newton < hi and abs(newton - beta) < last_step:
            step_to = newton
        elif g < 0 and not hi_tried:
            step_to = hi
        elif g > 0 and not lo_tried:
            step_to = lo
        else:
            step_to = float(np.sqrt(lo * hi))
        last_step, beta = abs(step_to - beta), step_to
    else:
        beta, terms = best  # out of iterations: the lowest NLL seen
    rows = terms.rows
    return TemperatureFit(
        1 / beta, rows, iteration, converged, at_bound, first[1].nll / rows, terms.nll / rows
    )
