"""Label quality: flags on labels that are probably wrong."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from labeling import audit
from labeling.doubts import exchange_doubts
from labeling.errors import Conflict, InvalidInput, NotFound, Problem
from labeling.labels import append_label_event, close_flags_of_replaced_label, kept_by_annotators, replacement_of
from labeling.models import FLAG_REASONS, FLAG_STATUSES, Example, Label, LabelFlag, ModelVersion, Project, User
from labeling import tasks
from labeling.projects import check_writable
from labeling.validation import unit_interval


if TYPE_CHECKING:  # the ML stack stays out of web workers, which import this module to label
    from active_learning.label_errors import LabelIssues


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
MAX_BULK = 500  # flags one bulk dismissal may name


@dataclass(frozen=True)
class FlagFilters:
    reason: str | None = None
    min_score: float | None = None
    max_score: float | None = None


def parse_flag_filters(args: Mapping[str, Any]) -> FlagFilters:
    """``reason``, ``min_score`` and ``max_score`` of a query string (API or page form); every bad
    one is named in one 422. Empty values mean no filter."""
    problems: list[Problem] = []
    reason = (args.get("reason") or "").strip() or None
    if reason is not None and reason not in FLAG_REASONS:
        problems.append(Problem(f"must be one of {', '.join(FLAG_REASONS)}", field="reason"))
    bounds = {name: unit_interval((args.get(name) or "").strip(), name, problems) for name in ("min_score", "max_score")}
    if None not in bounds.values() and bounds["min_score"] > bounds["max_score"]:
        problems.append(Problem(f"must be at least min_score ({bounds['min_score']:g}): no flag could match",
                                field="max_score"))
    if problems:
        raise InvalidInput("invalid filters", problems)
    return FlagFilters(reason=reason, **bounds)


def list_flags(session: Session, project_id: int, *, status: str | None = "open", limit: int = 100,
               offset: int = 0, filters: FlagFilters | None = None,
               ids: Sequence[int] | None = None) -> list[tuple[LabelFlag, str]]:
    """Flags with their example's external id, most suspicious first, filtered in SQL (``ids``:
    only these flags)."""
    query = select(LabelFlag, Example.external_id).join(Example, Example.id == LabelFlag.example_id).where(
        LabelFlag.project_id == project_id)
    if status:
        query = query.where(LabelFlag.status == status)
    if ids is not None:
        query = query.where(LabelFlag.id.in_(ids))
    if filters is not None:
        if filters.reason:
            query = query.where(LabelFlag.reason == filters.reason)
        if filters.min_score is not None:
            query = query.where(LabelFlag.score >= filters.min_score)
        if filters.max_score is not None:
            query = query.where(LabelFlag.score <= filters.max_score)
    return list(session.execute(
        query.order_by(LabelFlag.score.desc(), LabelFlag.id).limit(limit).offset(offset)))


def dismiss_flags(session: Session, project_id: int, flag_ids: Sequence[int], reviewer: User, *,
                  now: datetime) -> tuple[int, int]:
    """Dismiss each open flag of ``flag_ids`` through :func:`resolve_flag` (audited one by one),
    in the caller's transaction. Flags already resolved, or not of the project, are skipped.
    Returns (dismissed, skipped).

    Raises
    ------
    InvalidInput
        More than ``MAX_BULK`` flags.
    Conflict
        The project is archived.
    """
    ids = sorted(set(flag_ids))
    if len(ids) > MAX_BULK:
        raise InvalidInput.one(f"at most {MAX_BULK} flags at a time", field="flag_id")
    # Lock the rows (PostgreSQL) so a reviewer resolving one at the same moment waits, then sees it resolved.
    flags = session.scalars(select(LabelFlag).where(LabelFlag.id.in_(ids), LabelFlag.project_id == project_id)
                            .order_by(LabelFlag.id).with_for_update()).all() if ids else []
    dismissed = 0
    for flag in flags:
        # A flag whose label went is closed, not judged (counted as skipped).
        if flag.status == "open" and not _closed_as_replaced(session, flag, now=now):
            resolve_flag(session, flag.id, reviewer, "dismiss", now=now)
            dismissed += 1
    return dismissed, len(ids) - dismissed


def resolve_flag(session: Session, flag_id: int, reviewer: User, action: Any, label: Any = None, *,
                 now: datetime) -> LabelFlag:
    """Settle a flag. ``confirm``: the suggested label is right; ``correct``: ``label`` is right;
    ``dismiss``: the given label was right (as is ``correct`` to the given label). Confirm and
    correct add a new label event (source ``review``) replacing the flagged label; nothing is erased.

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
        raise InvalidInput.one(f"must be one of {', '.join(ACTIONS)}, reopen", field="action")
    if flag.status != "open":
        raise Conflict(f"this flag was already resolved ({flag.status})")
    project = session.get(Project, flag.project_id)
    check_writable(project)
    if action == "correct" and tasks.encode(project, label) == flag.given:
        action = "dismiss"  # "correct" to the label given says it was right; not the annotator's mistake
    if action == "dismiss":  # "the label was right" about a label no longer current would count for nothing
        _check_still_current(session, flag, now=now)
    else:
        value = flag.suggested if action == "confirm" else tasks.encode(project, label)
        flag.resolution_label_id = _replace_label(session, flag, reviewer, value, now=now)
    flag.status = {"confirm": "confirmed", "correct": "corrected", "dismiss": "dismissed"}[action]
    flag.resolved_by_id = reviewer.id
    flag.resolved_at = now
    audit.record(session, reviewer, "flag.resolved", project_id=flag.project_id, target=flag.id, now=now,
                 details={"action": action, "given": flag.given, "label": flag.suggested if action == "confirm" else label})
    session.flush()
    return flag


def _closed_as_replaced(session: Session, flag: LabelFlag, *, now: datetime) -> bool:
    """Close the flag if its label was undone or replaced (missed by the sweep): it is not the
    reviewer's to judge. True when it was."""
    replacement = replacement_of(session, flag.label_id)
    if replacement is not None:
        close_flags_of_replaced_label(session, flag.label_id, replacement, now=now)
    return replacement is not None


def _check_still_current(session: Session, flag: LabelFlag, *, now: datetime) -> None:
    if _closed_as_replaced(session, flag, now=now):
        raise Conflict("the flagged label was undone or replaced since it was flagged: the flag is closed")


def _replace_label(session: Session, flag: LabelFlag, reviewer: User, value: str, *, now: datetime) -> int:
    flagged = session.get(Label, flag.label_id)
    if flagged is None or flagged.value is None:
        raise Conflict("the flagged label no longer exists")
    _check_still_current(session, flag, now=now)
    correction_id = append_label_event(session, now=now, project_id=flagged.project_id, example_id=flagged.example_id,
                                       annotator_id=reviewer.id, value=value, replaces_id=flagged.id, source="review")
    if correction_id is None:
        raise Conflict("the flagged label was changed at the same moment; reload")
    return correction_id


def annotator_quality(session: Session, project_id: int) -> list[dict[str, Any]]:
    """Per annotator: labels given, flags raised on them, and agreement with reviewed gold
    (a dismissed flag means the annotator was right; confirmed or corrected, wrong)."""
    labels = dict(session.execute(
        select(Label.annotator_id, func.count()).where(Label.project_id == project_id, *kept_by_annotators())
        .group_by(Label.annotator_id)).all())
    flags = defaultdict(lambda: dict.fromkeys(FLAG_STATUSES, 0))
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
        mistakes = f["confirmed"] + f["corrected"]
        out.append({
            # flag_rate: confirmed mistakes per label; open flags are suspicions, not mistakes.
            "annotator": names.get(annotator_id, "(deleted)"), "labels": n,
            "flags": sum(f.values()), "open_flags": f["open"], "mistakes": mistakes,
            "flag_rate": round(mistakes / n, 4) if n else 0.0,
            "reviewed": reviewed,
            "agreement_with_review": round(f["dismissed"] / reviewed, 4) if reviewed else None,
            "measured_quality": measured.get(str(annotator_id)),
        })
    return out


def record_flags(session: Session, project: Project, example_ids: Sequence[int], current: Sequence[Sequence[tuple[int, str]]],
                 gold: Sequence[str], issues: LabelIssues, *, run_id: int | None, now: datetime,
                 judged_through: int) -> int:
    """Flag each current label the out-of-fold model finds probably wrong, and the minority labels
    of examples whose annotators disagree; withdraw the open model flags whose label this check
    finds more likely right than wrong. The model flags a label the previous check judged only if
    that check doubted it too (``labeling.doubts``). A label has at most one flag, ever: a label
    with a flag is not flagged again, except that a withdrawn flag reopens when the doubt comes
    back. Returns the number of flags opened (new or reopened).

    ``example_ids``, ``current`` (``(label id, value)`` pairs) and ``gold`` are aligned per example;
    ``issues.indices`` and ``issues.posteriors`` index them; ``judged_through`` is the highest
    label id the check saw (its snapshot's).
    """
    withdraw_flags(session, project.id, current, gold, issues, now=now)
    may_flag = exchange_doubts(session, project, current, gold, issues, judged_through=judged_through)
    wanted = _wanted_flags(project, example_ids, current, gold, issues, may_flag, run_id=run_id, now=now)
    if not wanted:
        return 0
    known: dict[int, LabelFlag] = {}
    ids = sorted(wanted)
    for start in range(0, len(ids), 5000):
        known.update((f.label_id, f) for f in session.scalars(
            select(LabelFlag).where(LabelFlag.label_id.in_(ids[start:start + 5000]))))
    new = [flag for label_id, flag in wanted.items() if label_id not in known]
    reopened = [(known[label_id], flag) for label_id, flag in wanted.items()
                if label_id in known and known[label_id].status == "withdrawn" and flag.reason == "model_disagrees"]
    for old, flag in reopened:
        old.status, old.score, old.suggested, old.run_id, old.resolved_at = "open", flag.score, flag.suggested, run_id, None
    session.add_all(new)
    session.flush()
    return len(new) + len(reopened)


def _wanted_flags(project: Project, example_ids: Sequence[int], current: Sequence[Sequence[tuple[int, str]]],
                  gold: Sequence[str], issues: LabelIssues, may_flag: Callable[[int], bool], *, run_id: int | None,
                  now: datetime) -> dict[int, LabelFlag]:
    # Annotators who disagree are a fact, the model's doubt an estimate: that reason goes first.
    wanted: dict[int, LabelFlag] = {}
    for i, labels in enumerate(current):
        if len({v for _, v in labels}) < 2:
            continue
        agreement = sum(v == gold[i] for _, v in labels) / len(labels)
        for label_id, value in labels:
            if value != gold[i]:
                wanted[label_id] = LabelFlag(
                    project_id=project.id, label_id=label_id, example_id=example_ids[i], given=value,
                    suggested=gold[i], score=round(1.0 - agreement, 4), reason="annotators_disagree", status="open",
                    created_at=now, run_id=run_id)
    for index, score, suggested in zip(issues.indices, issues.scores, issues.suggested):
        for label_id, value in current[int(index)]:
            if value != suggested and label_id not in wanted and may_flag(label_id):
                wanted[label_id] = LabelFlag(
                    project_id=project.id, label_id=label_id, example_id=example_ids[int(index)], given=value,
                    suggested=str(suggested), score=float(score), reason="model_disagrees", status="open",
                    created_at=now, run_id=run_id)
    return wanted


def withdraw_flags(session: Session, project_id: int, current: Sequence[Sequence[tuple[int, str]]], gold: Sequence[str],
                   issues: LabelIssues, *, now: datetime) -> int:
    """Withdraw (status ``withdrawn``) each open model flag whose label the check just made finds
    more likely right than wrong: a weaker model's false alarm should not wait for a reviewer.
    Only labels that are their example's gold are considered (a minority label keeps its flag: the
    annotators' disagreement is a fact); when the check found the model too weak to judge, each of
    those flags is withdrawn (else a flag from one lucky check stays open while no later check can
    stand behind it). Returns how many."""
    from active_learning.label_errors import WITHDRAW_BELOW

    if issues.posteriors is None and not issues.model_too_weak:
        return 0
    flags = session.scalars(select(LabelFlag).where(LabelFlag.project_id == project_id, LabelFlag.status == "open",
                                                    LabelFlag.reason == "model_disagrees")).all()
    if not flags:
        return 0
    row_of = {label_id: i for i, labels in enumerate(current) for label_id, value in labels if value == gold[i]}
    withdrawn = 0
    for flag in flags:
        i = row_of.get(flag.label_id)
        if i is not None and (issues.model_too_weak or issues.posteriors[i] < WITHDRAW_BELOW):
            flag.status, flag.resolved_at = "withdrawn", now
            withdrawn += 1
    return withdrawn


def close_stale_flags(session: Session, project_id: int, *, now: datetime) -> int:
    """Close every open flag of the project whose label is no longer current (a sweep, for
    replacements made by paths that did not close their flags themselves). Returns how many."""
    replacing = aliased(Label)
    stale = session.execute(
        select(LabelFlag.label_id, func.min(replacing.id))
        .join(replacing, replacing.replaces_id == LabelFlag.label_id)
        .where(LabelFlag.project_id == project_id, LabelFlag.status == "open")
        .group_by(LabelFlag.label_id)).all()
    return sum(close_flags_of_replaced_label(session, label_id, replacement, now=now) for label_id, replacement in stale)



def label_check_summary(session: Session, project_id: int) -> str:
    """What the last retrain's label check concluded, in one sentence for reviewers and admins."""
    from active_learning.label_errors import PRECISION_TARGET

    row = session.execute(select(ModelVersion.version, ModelVersion.metrics).where(ModelVersion.project_id == project_id)
                          .order_by(ModelVersion.version.desc()).limit(1)).first()
    check = (row.metrics or {}).get("label_check") if row else None
    if not check:
        return "Labels are checked at each retrain; no check has run yet."
    if check.get("skipped") and check.get("noise_rate") is None:
        return f"Model v{row.version} did not judge labels: {check['skipped']}."
    if not check.get("noise_rate"):
        waiting = session.scalar(select(func.count()).select_from(LabelFlag).where(
            LabelFlag.project_id == project_id, LabelFlag.status == "open"))
        return (f"Model v{row.version} sees no sign of wrong labels: either they are clean, or the model cannot yet "
                f"tell a wrong label from a hard example. It raises a flag only where a label is at least "
                f"{PRECISION_TARGET:.0%} likely wrong."
                + (f" The {waiting} open flag{'' if waiting == 1 else 's'} came from earlier checks, from annotators "
                   f"who disagree or from kept warnings, and wait for a reviewer." if waiting else ""))
    expected = check.get("expected_precision")
    return (f"Model v{row.version} estimates that {check['noise_rate']:.0%} of labels are wrong and found "
            f"{check.get('flagged', 0)} labels at least {PRECISION_TARGET:.0%} likely wrong"
            + (f" (about {expected:.0%} of them should be real mistakes)" if expected else "")
            + "; a label an earlier check found likely right (at the first check: any label given here, not "
              "imported) is flagged once a second check agrees.")
