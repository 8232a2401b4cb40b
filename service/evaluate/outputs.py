"""What a chunk hands back besides its sums, when the job keeps outputs: each row's logits
and label; and the side of the calibration split (``--fit-temperature``) each row falls on.

Rows are assigned to the side the temperature is fitted on, or to the side that measures it,
by a hash of (row index, seed): the same rows whatever the chunk size, the engine or the
number of workers, and the same on every run with the same seed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from service.evaluate.metrics import Tally

__all__ = ["ChunkOutputs", "ChunkTally", "RowSplit"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser: a bijection of 64-bit integers that scatters nearby inputs."""
    with np.errstate(over="ignore"):  # modulo 2**64, as intended
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@dataclass(frozen=True)
class RowSplit:
    """Which rows the temperature is fitted on: those whose hash of (row index, ``seed``) lies
    below ``fraction``; the others measure it. ``fraction`` 1 fits (and measures) on all."""

    fraction: float = 0.5
    seed: int = 0

    def uniforms(self, start: int, stop: int) -> npt.NDArray[np.float64]:
        """Each row's hash in [0, 1), for rows ``start..stop`` of the dataset."""
        rows = np.arange(start, stop, dtype=np.uint64)
        with np.errstate(over="ignore"):
            key = _mix(np.array([self.seed], np.uint64) * _GOLDEN + _GOLDEN)
            hashed = _mix(rows * _GOLDEN + key)
        return (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53

    def fit_rows(self, start: int, stop: int) -> npt.NDArray[np.bool_]:
        """Which of rows ``start..stop`` the temperature is fitted on."""
        if self.fraction >= 1:
            return np.ones(stop - start, bool)
        return self.uniforms(start, stop) < self.fraction

    @property
    def same_rows(self) -> bool:
        """Fitted and measured on the same (all) rows: optimistic figures."""
        return self.fraction >= 1

    def count(self, chunks: Iterable[tuple[int, int]]) -> tuple[int, int]:
        """Rows (fitted on, measured on) among these row ranges."""
        fit = total = 0
        for start, stop in chunks:
            fit += int(self.fit_rows(start, stop).sum())
            total += stop - start
        return fit, total if self.same_rows else total - fit


@dataclass(frozen=True)
class ChunkOutputs:
    """Rows ``start..start + n`` as the model scored them: raw logits (T = 1) ``[n, C]``
    float32 and class ids ``[n]``."""

    start: int
    logits: npt.NDArray[np.float32]
    labels: npt.NDArray[np.int64]

    def fit_rows(self, split: RowSplit) -> npt.NDArray[np.bool_]:
        """Which of these rows ``split`` fits the temperature on."""
        return split.fit_rows(self.start, self.start + len(self.labels))

    def side(
        self, split: RowSplit, fitted: bool
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """The logits and labels of the rows fitted on (``fitted``) or measured on."""
        if fitted:
            rows = self.fit_rows(split)
        elif split.same_rows:
            return self.logits, self.labels
        else:
            rows = ~self.fit_rows(split)
        return self.logits[rows], self.labels[rows]


@dataclass(frozen=True)
class ChunkTally(Tally):
    """A chunk's sums and, when the job keeps them, its rows' outputs (not sums: adding two
    chunk tallies gives a plain :class:`Tally`)."""

    outputs: ChunkOutputs | None = None
