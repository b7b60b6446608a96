"""The data pages (reviewer, admin): a project's examples with filters and pages (the results
alone for htmx), and one example's history, prediction and flags with a relabel form."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from app.api.shapes import browsed_example_json, history_json
from app.auth import REVIEWERS, requires
from app.db import get_session
from app.ui import annotation_text, bp, filter_args, form_annotation, page_number
from labeling import browse, projects, reopening, tasks
from labeling.db import reading, utcnow
from labeling.errors import Conflict, InvalidInput, NotFound, Unavailable
from labeling.examples import get_project_example
from labeling.models import LabelFlag
from labeling.predict import predict
from labeling.projects import label_names

PAGE_SIZE = 50
FILTER_ARGS = ("q", "label", "annotator", "status", "min_confidence", "max_confidence")


@bp.get("/projects/<int:project_id>/data")
@requires(*REVIEWERS)
def data_page(project_id: int):
    """Search the project's examples; an htmx request gets the results section alone."""
    page = page_number()
    args = filter_args(request.args, FILTER_ARGS)
    partial = bool(request.headers.get("HX-Request"))
    with reading(get_session()) as db:
        project = projects.get_project(db, project_id)
        errors: dict[str, str] = {}
        try:
            found = browse.search(db, project, browse.parse_filters(project, args), limit=PAGE_SIZE,
                                  offset=(page - 1) * PAGE_SIZE)
        except InvalidInput as exc:
            found, errors = None, {p.field or "form": p.message for p in exc.problems}
        body = render_template(
            "partials/_data_results.html" if partial else "pages/data.html", project=project, args=args, page=page,
            errors=errors, rows=[browsed_example_json(r) for r in found.rows] if found else [],
            total=found.total if found else 0, exact=found.exact if found else True, page_size=PAGE_SIZE,
            searched=found.searched if found else None, capped=found.capped if found else False,
            min_full_search=browse.FTS_MIN,
            labels=label_names(project), statuses=browse.STATUSES, n_examples=project.n_examples)
    return body, 200 if partial or not errors else 422  # htmx swaps no 4xx answer


def _render_example(project_id: int, example_id: int, *, error: str | None = None, status: int = 200) -> Any:
    with reading(get_session()) as db:
        project = projects.get_project(db, project_id)
        example = history_json(browse.history(db, get_project_example(db, project_id, example_id)))
        example["prediction"] = _champions_prediction(db, project, example)
        example["reopenable"] = reopening.reopenable_flags(db, example_id)
        current = [e for e in example["labels"] if e["current"]]
        return render_template("pages/example.html", project=project, example=example, current=current,
                               labels=label_names(project), error=error, role=g.role,
                               multi=tasks.is_multi_label(project)), status


def _champions_prediction(db: Any, project: Any, example: dict[str, Any]) -> dict[str, Any] | None:
    """What the champion says of the example now. The stored score is from the last time the pool
    was scored, which skips labeled examples: a label given before v2 kept v1's guess (or none)."""
    stored = example.get("prediction")
    champion = projects.champion_version(db, project)
    if champion is None or (stored and stored["model_version"] == champion):
        return stored and {**stored, "label": annotation_text(stored["label"], project)}
    try:
        answer = predict(db, project, [example["data"]], now=utcnow())
    except (Conflict, InvalidInput, Unavailable):  # it cannot read this example here: say what was stored
        return stored and {**stored, "label": annotation_text(stored["label"], project)}
    said = answer["predictions"][0]
    label = (", ".join(said["labels"]) or "none of these") if "labels" in said else said["label"]
    return {"label": label, "confidence": said["confidence"], "model_version": answer["model_version"]}


@bp.get("/projects/<int:project_id>/examples/<int:example_id>")
@requires(*REVIEWERS)
def example_page(project_id: int, example_id: int):
    """An example's every label event, the model's prediction, its flags, and a relabel form."""
    return _render_example(project_id, example_id)


@bp.post("/projects/<int:project_id>/examples/<int:example_id>/flags/<int:flag_id>/reopen")
@requires(*REVIEWERS)
def reopen_example_flag(project_id: int, example_id: int, flag_id: int):
    """Take back a decision on one of the example's flags (``reopening.reopen_flag``); back to its page."""
    db = get_session()
    get_project_example(db, project_id, example_id)
    flag = db.get(LabelFlag, flag_id)
    if flag is None or flag.example_id != example_id:
        raise NotFound(f"no flag with id {flag_id} on this example")
    try:
        reopening.reopen_flag(db, flag_id, g.user, now=utcnow())
    except Conflict as exc:
        db.rollback()
        return _render_example(project_id, example_id, error=exc.message, status=409)
    db.commit()
    flash("Decision taken back: the flag is open again, on the review page.")
    return redirect(url_for("ui.example_page", project_id=project_id, example_id=example_id))


@bp.post("/projects/<int:project_id>/examples/<int:example_id>/relabel")
@requires(*REVIEWERS)
def relabel_example(project_id: int, example_id: int):
    """Relabel the example (a review event replacing its current label); back to its page."""
    db = get_session()
    project = projects.get_project(db, project_id)
    try:
        value = form_annotation(project)
        browse.relabel(db, project, g.user, example_id, value,
                       label_id=request.form.get("label_id") or None, now=utcnow())
    except (InvalidInput, Conflict) as exc:
        db.rollback()
        message = "; ".join(f"{p.field}: {p.message}" for p in exc.problems) if isinstance(exc, InvalidInput) \
            else exc.message
        return _render_example(project_id, example_id, error=message,
                               status=422 if isinstance(exc, InvalidInput) else 409)
    db.commit()
    flash(f"Relabeled as {annotation_text(tasks.encode(project, value), project)}.")
    return redirect(url_for("ui.example_page", project_id=project_id, example_id=example_id))
