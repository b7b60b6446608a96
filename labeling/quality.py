"""Label quality: flags on labels that are probably wrong."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labeling.errors import Conflict, InvalidInput, NotFound
from labeling.models import Example, Label, LabelFlag, ModelVersion, Project, User
from labeling.projects import label_names
from labeling.db import iso


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


ACTIONS = ("confirm", "correct", "dismiss")


def list_flags(session: Session, project_id: int, *, status: str | None = "open", limit: int = 100,
               offset: int = 0) -> list[tuple[LabelFlag, str]]:
    """Flags with their example's external id, most suspicious first."""
    query = select(LabelFlag, Example.external_id).join(Example, Example.id == LabelFlag.example_id).where(
        LabelFlag.project_id == project_id)
    if status:
        query = query.where(LabelFlag.status == status)
    return list(session.execute(
        query.order_by(LabelFlag.score.desc(), LabelFlag.id).limit(limit).offset(offset)))


def flag_as_dict(flag: LabelFlag, external_id: str) -> dict[str, Any]:
    return {
        "id": flag.id, "label_id": flag.label_id, "example_id": flag.example_id, "external_id": external_id,
        "given": flag.given, "suggested": flag.suggested, "score": round(flag.score, 6), "reason": flag.reason,
        "status": flag.status, "created_at": iso(flag.created_at), "resolved_at": iso(flag.resolved_at),
    }


def resolve_flag(session: Session, flag_id: int, reviewer: User, action: Any, label: Any = None, *,
                 now: datetime) -> LabelFlag:
    """Settle a flag. ``confirm``: the suggested label is right; ``correct``: ``label`` is right;
    ``dismiss``: the given label was right. Confirm and correct add a new label event (source
    ``review``) replacing the flagged label; nothing is erased.

    Raises
    ------
    InvalidInput
        Unknown action, or a label not in the project.
    Conflict
        The flag was resolved already.
    """
    flag = session.get(LabelFlag, flag_id)
    if flag is None:
        raise NotFound(f"no flag with id {flag_id}")
    if action not in ACTIONS:
        raise InvalidInput.one(f"must be one of {', '.join(ACTIONS)}", field="action")
    if flag.status != "open":
        raise Conflict(f"this flag was already resolved ({flag.status})")
    project = session.get(Project, flag.project_id)
    if action != "dismiss":
        value = flag.suggested if action == "confirm" else label
        if value not in label_names(project):
            raise InvalidInput.one(f"must be one of {', '.join(label_names(project))}", field="label")
        flag.resolution_label_id = _replace_label(session, flag, reviewer, value, now=now)
    flag.status = {"confirm": "confirmed", "correct": "corrected", "dismiss": "dismissed"}[action]
    flag.resolved_by_id = reviewer.id
    flag.resolved_at = now
    session.flush()
    return flag


def _replace_label(session: Session, flag: LabelFlag, reviewer: User, value: str, *, now: datetime) -> int:
    flagged = session.get(Label, flag.label_id)
    if flagged is None or flagged.value is None:
        raise Conflict("the flagged label no longer exists")
    if session.scalar(select(Label.id).where(Label.replaces_id == flagged.id)) is not None:
        raise Conflict("the flagged label was changed since it was flagged; reload")
    correction = Label(project_id=flagged.project_id, example_id=flagged.example_id, annotator_id=reviewer.id,
                       value=value, created_at=now, replaces_id=flagged.id, source="review")
    session.add(correction)
    session.flush()
    return correction.id


def annotator_quality(session: Session, project_id: int) -> list[dict[str, Any]]:
    """Per annotator: labels given, flags raised on them, and agreement with reviewed gold
    (a dismissed flag means the annotator was right; confirmed or corrected, wrong)."""
    labels = dict(session.execute(
        select(Label.annotator_id, func.count()).where(Label.project_id == project_id, Label.value.is_not(None),
                                                       Label.source.in_(("annotator", "mistake_check")))
        .group_by(Label.annotator_id)).all())
    flags = defaultdict(lambda: {"open": 0, "confirmed": 0, "corrected": 0, "dismissed": 0})
    for annotator_id, status, n in session.execute(
        select(Label.annotator_id, LabelFlag.status, func.count()).join(Label, Label.id == LabelFlag.label_id)
        .where(LabelFlag.project_id == project_id).group_by(Label.annotator_id, LabelFlag.status)):
        flags[annotator_id][status] = n
    names = dict(session.execute(select(User.id, User.name)).all())
    # Measured by the last retrain that had several annotators on some examples (CROWDLAB).
    measured: dict[str, float] = {}
    for metrics in session.scalars(select(ModelVersion.metrics).where(ModelVersion.project_id == project_id)
                                   .order_by(ModelVersion.version.desc()).limit(20)):
        if metrics.get("annotator_quality"):
            measured = metrics["annotator_quality"]
            break
    out = []
    for annotator_id, n in sorted(labels.items(), key=lambda kv: -kv[1]):
        f = flags[annotator_id]
        reviewed = f["confirmed"] + f["corrected"] + f["dismissed"]
        out.append({
            "annotator": names.get(annotator_id, "(deleted)"), "labels": n,
            "flags": sum(f.values()), "flag_rate": round(sum(f.values()) / n, 4) if n else 0.0,
            "reviewed": reviewed,
            "agreement_with_review": round(f["dismissed"] / reviewed, 4) if reviewed else None,
            "measured_quality": measured.get(str(annotator_id)),
        })
    return out
