"""Label quality: flags on labels that are probably wrong."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.models import Label, LabelFlag


def flag_kept_warning(session: Session, label: Label, *, now: datetime) -> LabelFlag | None:
    """Flag a label its annotator kept although the champion confidently disagreed."""
    if label.warned_suggestion is None or label.value is None:
        return None
    existing = session.scalar(select(LabelFlag).where(LabelFlag.label_id == label.id, LabelFlag.reason == "kept_warning"))
    if existing is not None:
        return existing
    flag = LabelFlag(
        project_id=label.project_id, label_id=label.id, example_id=label.example_id, given=label.value,
        suggested=label.warned_suggestion, score=float(label.warned_confidence or 0.0),
        reason="kept_warning", status="open", created_at=now,
    )
    session.add(flag)
    session.flush()
    return flag
