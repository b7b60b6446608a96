"""The labeling page: one example at a time, keyboard first, next example in the same response."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

from flask import current_app, g, render_template, request, session

from app import jobs
from app.api.links import api_links
from app.auth import ANY_ROLE, requires
from app.db import get_session
from app.ui import bp, counted, form_annotation
from labeling import labels, projects, queue, tasks
from labeling.db import utcnow
from labeling.errors import Conflict, InvalidInput
from labeling.examples import get_example
from labeling.models import Label, Project
from labeling.quality import flag_kept_warning

UNDO_AFTER_RELOAD = timedelta(hours=1)
EXACT_LABELED_BELOW = 50_000  # labeled examples counted afresh on every keypress below this
LABELED_REUSE_SECONDS = 10.0
WARNED_KEY = "warned_label"  # the label whose mistake warning this browser was shown


def _int_field(name: str) -> int:
    raw = request.form.get(name, "")
    if not raw.lstrip("-").isdigit():
        raise InvalidInput.one("must be an integer", field=name)
    return int(raw)


def _progress(project: Project) -> dict[str, Any]:
    db = get_session()
    # Only what the progress line shows: it is rendered on every keypress.
    return {**_labeling_progress(project.id), "mine_today": labels.labels_today(db, project, g.user, now=utcnow())}


def _labeling_progress(project_id: int) -> dict[str, int]:
    """The project's examples and labeled examples. Counting the labeled is an index scan that
    grows with them (163 ms at 500,000), so from ``EXACT_LABELED_BELOW`` on a process reuses its
    count for ``LABELED_REUSE_SECONDS``: the line may lag a few labels behind, a keypress does not
    pay the scan."""
    now = time.monotonic()
    kept = current_app.extensions.setdefault("labeled_counts", {})  # per app: one database each
    seen = kept.get(project_id)
    if seen is not None and now - seen[0] < LABELED_REUSE_SECONDS:
        return seen[1]
    progress = projects.labeling_progress(get_session(), project_id)
    if progress["labeled"] >= EXACT_LABELED_BELOW:
        kept[project_id] = (now, progress)
    else:
        kept.pop(project_id, None)
    return progress


def _lease_next_and_commit(project: Project) -> queue.Lease | None:
    """Lease the next example to the caller and commit the request's work with it."""
    db = get_session()
    lease = queue.lease_next(db, project, g.user, now=utcnow(), lease_seconds=current_app.config["LEASE_SECONDS"])
    db.commit()
    return lease


def _render_work(project: Project, lease: queue.Lease | None, *, last_label: Label | None = None,
                 notice: str | None = None, status: int = 200):
    """Render an example to label (or the empty state), with the progress line out of band."""
    return render_template(
        "partials/_work.html", project=project, lease=lease, progress=_progress(project),
        skipped=_skipped(project, lease),
        view_key=secrets.token_urlsafe(12), last_label=last_label, notice=notice, oob=True,
        lease_seconds=current_app.config["LEASE_SECONDS"], multi=tasks.is_multi_label(project),
    ), status


def _last_label_to_undo(project: Project) -> Label | None:
    """My latest label of the past hour that still stands: after an undo it is the one before, so
    Backspace walks back through my labels one at a time."""
    return labels.last_label_to_undo(get_session(), project, g.user, since=utcnow() - UNDO_AFTER_RELOAD)


def _skipped(project: Project, lease: Any) -> int:
    """For the empty state: how many examples I skipped that still need labels."""
    return 0 if lease is not None or project.archived_at else queue.skipped_count(get_session(), project, g.user)


@bp.get("/projects/<int:project_id>/label")
@requires(*ANY_ROLE)
def label_page(project_id: int):
    """Show the labeling page with the first example already leased."""
    db = get_session()
    project = projects.get_project(db, project_id)
    # Opened again (a reload, a new tab): the last label of the past hour can still be undone,
    # and one whose mistake warning was left unanswered is asked about again, before anything new.
    last_label = _last_label_to_undo(project)
    # Only a warning this page showed (an API client gets its own in the answer), on a live project.
    shown_here = last_label is not None and session.get(WARNED_KEY) == last_label.id and not project.archived_at
    warning = labels.unanswered_warning(db, last_label) if shown_here else None
    multi = tasks.is_multi_label(project)
    shown: dict[str, Any] = {"lease": None}
    if warning:
        shown = {"warning": warning, "label": last_label, "lease": get_example(db, last_label.example_id),
                 "chosen": tasks.decode(project, last_label.value)}
    elif not project.archived_at:  # archived: the page says so rather than a bare 409
        shown["lease"] = queue.lease_next(db, project, g.user, now=utcnow(),
                                          lease_seconds=current_app.config["LEASE_SECONDS"])
    db.commit()
    return render_template(
        "pages/label.html", project=project, progress=_progress(project), view_key=secrets.token_urlsafe(12),
        oob=False, notice=None, last_label=last_label, lease_seconds=current_app.config["LEASE_SECONDS"],
        suggestions=projects.config(project).suggestions, multi=multi, skipped=_skipped(project, shown["lease"]), **shown,
    )


@bp.post("/projects/<int:project_id>/label/submit")
@requires(*ANY_ROLE)
def label_submit(project_id: int):
    """Submit a label; answer with the mistake warning or the next example."""
    db = get_session()
    project = projects.get_project(db, project_id)
    example_id = _int_field("example_id")
    value = form_annotation(project)
    try:
        result = labels.submit_label(
            db, project, g.user, example_id, value, now=utcnow(),
            lease_id=_int_field("lease_id") if request.form.get("lease_id") else None,
            idempotency_key=request.form.get("idempotency_key") or None,
            duration_ms=request.form.get("duration_ms", type=int),
            mistake_confidence=current_app.config["MISTAKE_CONFIDENCE"],
            links=api_links(),
            source="mistake_check" if request.form.get("after_warning") else "annotator",
        )
    except Conflict as exc:
        db.rollback()
        return _render_work(project, _lease_next_and_commit(project), notice=f"{exc.message}. Here is the next example.")
    db.commit()
    jobs.queued(result.retrain_run_id)
    if result.warning and result.created and result.label.source != "mistake_check":
        # The example stays on screen: the annotator reconsiders what they are looking at.
        example = get_example(db, result.label.example_id)
        session[WARNED_KEY] = result.label.id
        return render_template("partials/_warning.html", project=project, label=result.label,
                               warning=result.warning, view_key=secrets.token_urlsafe(12), lease=example,
                               multi=tasks.is_multi_label(project), chosen=tasks.decode(project, result.label.value),
                               progress=_progress(project), oob=True)  # the label counts already
    return _render_work(project, _lease_next_and_commit(project), last_label=result.label)


@bp.post("/projects/<int:project_id>/label/keep")
@requires(*ANY_ROLE)
def label_keep(project_id: int):
    """Keep a label the model disagreed with; it goes to review."""
    db = get_session()
    project = projects.get_project(db, project_id)
    label = labels.get_label(db, _int_field("label_id"))
    if label.annotator_id != g.user.id or label.project_id != project.id:
        raise InvalidInput.one("not your label in this project", field="label_id")
    flag_kept_warning(db, label, now=utcnow())
    return _render_work(project, _lease_next_and_commit(project), last_label=label)


@bp.post("/projects/<int:project_id>/label/skip")
@requires(*ANY_ROLE)
def label_skip(project_id: int):
    """Skip this example; it will not be served to me again."""
    db = get_session()
    project = projects.get_project(db, project_id)
    queue.skip_example(db, project, g.user, _int_field("example_id"), now=utcnow())
    return _render_work(project, _lease_next_and_commit(project), last_label=_last_label_to_undo(project))


@bp.post("/projects/<int:project_id>/label/unskip")
@requires(*ANY_ROLE)
def label_unskip(project_id: int):
    """Serve me the examples I skipped again, the first of them now."""
    db = get_session()
    project = projects.get_project(db, project_id)
    n = queue.forget_skips(db, project, g.user)
    return _render_work(project, _lease_next_and_commit(project),
                        notice=f"{counted(n, 'skipped example')} back in your queue.")


@bp.post("/projects/<int:project_id>/label/undo")
@requires(*ANY_ROLE)
def label_undo(project_id: int):
    """Undo my last label and show that example again."""
    db = get_session()
    project = projects.get_project(db, project_id)
    label = labels.get_label(db, _int_field("label_id"))
    if label.project_id != project.id:
        raise InvalidInput.one("that label belongs to another project", field="label_id")
    labels.undo_label(db, g.user, label.id, now=utcnow())
    if request.form.get("example_id"):
        queue.release_lease(db, g.user, _int_field("example_id"))
    lease = queue.lease_example(db, project, g.user, label.example_id, now=utcnow(),
                                lease_seconds=current_app.config["LEASE_SECONDS"])
    notice = "Label undone."
    if lease is None:  # another annotator holds that example now: go on rather than show "nothing left"
        notice = "Label undone; another annotator is labeling that example now."
        lease = queue.lease_next(db, project, g.user, now=utcnow(), lease_seconds=current_app.config["LEASE_SECONDS"])
    db.commit()
    return _render_work(project, lease, notice=notice, last_label=_last_label_to_undo(project))


@bp.post("/projects/<int:project_id>/label/renew")
@requires(*ANY_ROLE)
def label_renew(project_id: int):
    """Keep my lease on the example I am looking at."""
    db = get_session()
    projects.get_project(db, project_id)
    try:
        expires = queue.renew_lease(db, g.user, _int_field("example_id"), _int_field("lease_id"), now=utcnow(),
                                    lease_seconds=current_app.config["LEASE_SECONDS"])
    except Conflict as exc:
        return render_template("partials/_lease.html", expired=True, message=exc.message), 409
    db.commit()
    return render_template("partials/_lease.html", expired=False, expires_at=expires)
