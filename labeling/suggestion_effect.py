"""Do suggestions sway annotators, and do they speed them up? Suggested against blind labels.

The dashboard's comparison: the labels annotators gave with a suggestion on screen (``show`` or
``preselect``) against those given on blind examples (``blind_share``), each group's agreement
with the example's current gold label and its median seconds per label. Blind examples are a
random share (a hash of their ids), so the two groups differ only in what the page showed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.export import gold_of
from labeling.models import Example, Label, Project
from labeling.snapshots import current_labels_query

MIN_BLIND = 20  # blind labels below which the comparison says "too few" rather than show numbers
_CHUNK = 500  # examples whose current labels are read per query


@dataclass(frozen=True)
class LabelGroup:
    """Labels given in one condition: how many, how many agree with the gold label (of those whose
    example has one), and the median seconds per label (over the labels that carry a duration)."""

    labels: int
    agreeing: int
    agreement: float | None  # agreeing / labels with a gold label
    timed: int
    median_seconds: float | None


@dataclass(frozen=True)
class SuggestionEffect:
    suggested: LabelGroup
    blind: LabelGroup
    accepted: float | None  # share of suggested labels that are the suggested label
    enough: bool  # at least ``min_blind`` blind labels and as many suggested ones


def suggestion_effect(session: Session, project_id: int, *, min_blind: int = MIN_BLIND) -> SuggestionEffect | None:
    """Compare suggested and blind labels of a project; None when no label was given with
    suggestions on.

    Counted: annotators' label events (source ``annotator``: the first answer, with the time it
    took; a later undo or a reviewer's correction does not remove it) given while suggestions were
    on, blind or with a suggestion shown. Their gold label is the example's current one: the
    retrain's consensus while it is current, else the majority of its current labels.
    """
    rows = session.execute(
        select(Label.example_id, Label.value, Label.suggestion_mode, Label.suggested, Label.duration_ms)
        .where(Label.project_id == project_id, Label.suggestion_mode.is_not(None),  # ix_labels_suggestion_mode
               Label.source == "annotator", Label.value.is_not(None),
               Label.suggestion_mode.in_(("blind", "show", "preselect")))
    ).all()
    if not rows:
        return None
    golds = _golds(session, session.get(Project, project_id), sorted({r.example_id for r in rows}))
    blind = [r for r in rows if r.suggestion_mode == "blind"]
    suggested = [r for r in rows if r.suggestion_mode != "blind"]
    accepted = sum(r.value == r.suggested for r in suggested)
    return SuggestionEffect(
        suggested=_group(suggested, golds), blind=_group(blind, golds),
        accepted=round(accepted / len(suggested), 4) if suggested else None,
        enough=len(blind) >= min_blind and len(suggested) >= min_blind,
    )


def _golds(session: Session, project: Project, example_ids: list[int]) -> dict[int, str]:
    """The current gold label of each example that has one."""
    out: dict[int, str] = {}
    for start in range(0, len(example_ids), _CHUNK):
        chunk = example_ids[start:start + _CHUNK]
        values: dict[int, list[str]] = {}
        for example_id, value in session.execute(
                current_labels_query(project.id, example_ids=chunk)
                .with_only_columns(Label.example_id, Label.value).order_by(Label.id)):
            values.setdefault(example_id, []).append(value)
        consensus = {e: (g, n) for e, g, n in session.execute(
            select(Example.id, Example.gold_label, Example.gold_n)
            .where(Example.id.in_(chunk), Example.gold_label.is_not(None)))}
        for example_id, labels in values.items():
            gold = gold_of(project, labels, consensus.get(example_id))[0]
            if gold is not None:
                out[example_id] = gold
    return out


def _group(rows: list[Any], golds: dict[int, str]) -> LabelGroup:
    judged = [r.value == golds[r.example_id] for r in rows if r.example_id in golds]
    durations = [r.duration_ms for r in rows if r.duration_ms is not None]
    return LabelGroup(
        labels=len(rows), agreeing=sum(judged),
        agreement=round(sum(judged) / len(judged), 4) if judged else None,
        timed=len(durations),
        median_seconds=round(float(np.median(durations)) / 1000, 2) if durations else None,
    )
