"""``python -m service.promotion``: move a version label to a candidate only if it is no worse.

Exit status: 0 promoted (or the label already names the candidate), 1 refused (worse than the
labelled version), 2 an error (settings, data, model, or the label move).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from service.command_line import settings_from_args
from service.promotion.labels import PromotionError
from service.promotion.settings import PromoteSettings

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; the exit status."""
    settings = settings_from_args(PromoteSettings, argv)
    if settings is None:
        return 2
    from service.evaluate.errors import EvaluationError

    try:
        return _promote(settings)
    except (EvaluationError, PromotionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _model_folder(settings: PromoteSettings) -> tuple[str, Path, set[int]]:
    from service.evaluate.models import find_version

    name, _, versions = find_version(settings.model_repository, settings.model, settings.candidate)
    return name, settings.model_repository / name, set(versions)


def _promote(settings: PromoteSettings) -> int:
    from service.promotion.decision import Criteria, judge
    from service.promotion.labels import label_version, move_label, notify
    from service.promotion.measure import measure
    from service.promotion.report import write_report

    if settings.figures:
        from service.evaluate.extras import require

        require("matplotlib", "the figures", instead="--no-figures")
    name, folder, versions = _model_folder(settings)
    label, candidate_version = settings.label, settings.candidate
    held = label_version(folder, label)
    if held == candidate_version:
        print(f"{name}: {label} already names version {candidate_version}; nothing to do")
        return 0
    if held is not None and held not in versions:
        print(f"{name}: {label} names version {held}, which is not in the repository any more")
        held = None
    candidate = measure(settings, candidate_version)
    incumbent = measure(settings, held) if held is not None else None
    criteria = Criteria(settings.nll_margin, settings.accuracy_margin, settings.ece_margin)
    verdict = judge(
        candidate.figures(), incumbent.figures() if incumbent is not None else None, criteria
    )
    moved = verdict.promote and not settings.dry_run
    if moved:
        move_label(folder, label, candidate_version)
    write_report(
        settings.out, label=label, candidate=candidate, incumbent=incumbent, verdict=verdict,
        moved=moved, figures=settings.figures,
    )  # fmt: skip
    if candidate.served["dataset"]["name"] == "synthetic":
        print("DATASET: SYNTHETIC stand-in (generated shapes), not CIFAR-10.")
    for finding in verdict.findings:
        print(f"  {finding}")
    if not verdict.promote:
        print(f"REFUSED: {name} version {candidate_version} is worse than {label} (version "
              f"{held}); the label stays. Report: {settings.out / 'promotion.md'}")  # fmt: skip
        return 1
    if moved and settings.server is not None:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        notify(settings.server, name, key)
    where = "" if moved else " (dry run: not moved)"
    print(f"PROMOTED: {name} {label} → version {candidate_version}{where}. "
          f"Report: {settings.out / 'promotion.md'}")  # fmt: skip
    return 0
