"""Whether a candidate version may take a label: no worse than the version it replaces."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Criteria", "Verdict", "judge"]

Figures = dict[str, float]
"""``nll``, ``accuracy``, ``ece`` of a version's served scores."""


@dataclass(frozen=True)
class Criteria:
    """How much worse than the labelled version a candidate may be (the margins of
    :class:`~service.promotion.settings.PromoteSettings`)."""

    nll_margin: float
    """Relative."""
    accuracy_margin: float
    """Absolute."""
    ece_margin: float | None
    """Absolute; ``None``: not gated."""


@dataclass(frozen=True)
class Verdict:
    """The decision and each criterion's finding, in words."""

    promote: bool
    findings: list[str]


def judge(candidate: Figures, incumbent: Figures | None, criteria: Criteria) -> Verdict:
    """Promote when every criterion holds (always, when no version holds the label yet)."""
    if incumbent is None:
        return Verdict(True, ["no version holds the label yet"])
    nll_limit = incumbent["nll"] * (1 + criteria.nll_margin)
    accuracy_limit = incumbent["accuracy"] - criteria.accuracy_margin
    checks = [
        (
            candidate["nll"] <= nll_limit,
            f"NLL {candidate['nll']:.4f} vs {incumbent['nll']:.4f} (at most {nll_limit:.4f})",
        ),
        (
            candidate["accuracy"] >= accuracy_limit,
            f"accuracy {candidate['accuracy']:.4f} vs {incumbent['accuracy']:.4f} "
            f"(at least {accuracy_limit:.4f})",
        ),
    ]
    if criteria.ece_margin is not None:
        ece_limit = incumbent["ece"] + criteria.ece_margin
        checks.append(
            (
                candidate["ece"] <= ece_limit,
                f"ECE {candidate['ece']:.4f} vs {incumbent['ece']:.4f} (at most {ece_limit:.4f})",
            )
        )
    findings = [f"{'ok' if ok else 'WORSE'}: {text}" for ok, text in checks]
    return Verdict(all(ok for ok, _ in checks), findings)
