"""Second opinions for model flags: the doubts of the last label check, kept for the next.

A model flag on a label that the previous check judged opens only if that check doubted the
label too (found it more likely wrong than right). One check can misjudge many labels at once:
with a perfect annotator, single retrains whose noise estimate the hard examples inflated flagged
8 digits and 32 movie snippets that the next check found likely right (docs/benchmarks.md).
Labels new since the previous check need no second opinion: nothing has judged them yet, so a
real mistake is still flagged by the first check that sees it (or the one after, for a label the
mark covers that the check could not judge: one whose transaction committed after the snapshot's
read on PostgreSQL, a multi-label column with too few examples on one side).

A project's first check judges every label at once, with the first model that clears the bar: a
perfect annotator saw 5 false flags on 160 digits from one such check (docs/benchmarks.md). So at
the first check only imported labels are flagged at once (an import of labeled data may be judged
by its own retrain alone); labels given in the loop wait for the next check, one retrain later.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from labeling.models import Label, LabelDoubt, Project

if TYPE_CHECKING:
    from active_learning.label_errors import LabelIssues


def exchange_doubts(session: Session, project: Project, current: Sequence[Sequence[tuple[int, str]]],
                    gold: Sequence[str], issues: "LabelIssues", *, judged_through: int) -> Callable[[int], bool]:
    """Keep this check's doubts in place of the last check's, and return whether the model may
    flag a label now: it is new since the last check, or that check doubted it too (at a project's
    first check: it was imported).

    ``current`` holds each judged row's ``(label id, value)`` pairs and ``gold`` its label, aligned
    with ``issues.posteriors`` (the chance that the gold is wrong: a doubt of the labels that give
    it, not of a minority label, flagged for its annotators' disagreement already);
    ``judged_through`` is the highest label id this check saw. A check
    that judged nothing (too few labels, no label changed, a model too weak) leaves the doubts
    as they were.
    """
    from active_learning.label_errors import WITHDRAW_BELOW

    mark = project.label_check_mark
    doubted = set(session.scalars(select(LabelDoubt.label_id).where(LabelDoubt.project_id == project.id)))
    if issues.posteriors is not None:
        session.execute(delete(LabelDoubt).where(LabelDoubt.project_id == project.id))
        rows = [{"label_id": label_id, "project_id": project.id, "posterior": round(float(posterior), 4)}
                for labels, right, posterior in zip(current, gold, issues.posteriors) if posterior >= WITHDRAW_BELOW
                for label_id, value in labels if value == right]
        if rows:
            session.execute(insert(LabelDoubt), rows)
        project.label_check_mark = judged_through
    if mark is None:
        imported = _imported(session, [label_id for index in issues.indices for label_id, _ in current[int(index)]])
        return lambda label_id: label_id in imported
    return lambda label_id: label_id > mark or label_id in doubted


def _imported(session: Session, label_ids: Sequence[int]) -> set[int]:
    """Which of ``label_ids`` (the labels a check would flag) came from an import."""
    found: set[int] = set()
    for start in range(0, len(label_ids), 5000):
        found.update(session.scalars(select(Label.id).where(
            Label.id.in_(label_ids[start:start + 5000]), or_(Label.source == "import", Label.source.like("import:%")))))
    return found
