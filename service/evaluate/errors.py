"""The one error an evaluation reports to its user: what is wrong and what was expected."""

from __future__ import annotations

__all__ = ["EvaluationError"]


class EvaluationError(Exception):
    """A dataset, model or option that an evaluation cannot use; the message says why."""
