"""Browsing data in the JSON API: a project's examples with filters, one example's history, and a
reviewer's relabel."""

from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.common import json_body, pagination
from app.api.shapes import browsed_example_json, history_json, label_event_json
from app.auth import REVIEWERS, requires
from app.db import get_session
from labeling import browse, projects, tasks
from labeling.db import reading, utcnow
from labeling.examples import get_example
from labeling.models import Label


@bp.get("/projects/<int:project_id>/examples")
@requires(*REVIEWERS, api=True)
def browse_examples(project_id: int):
    """A project's examples matching the filters, in id order, with their current labels; ``total``
    counts the matches up to a cap (``total_exact`` is false beyond it); ``search_complete`` is
    false when a text of one or two characters searched the first ``searched_examples`` only."""
    limit, offset = pagination()
    with reading(get_session()) as db:
        project = projects.get_project(db, project_id)
        found = browse.search(db, project, browse.parse_filters(project, request.args), limit=limit, offset=offset)
        multi = tasks.is_multi_label(project)
        return jsonify({"examples": [browsed_example_json(row, multi=multi) for row in found.rows], "total": found.total,
                        "total_exact": found.exact, "search_complete": found.searched is None,
                        "searched_examples": found.searched, "limit": limit, "offset": offset})


@bp.get("/examples/<int:example_id>")
@requires(*REVIEWERS, api=True)
def show_example(example_id: int):
    """An example with every label event on it (who, when, source, value, what it replaced), the
    model's prediction and its flags."""
    with reading(get_session()) as db:
        example = get_example(db, example_id)
        multi = tasks.is_multi_label(projects.get_project(db, example.project_id))
        return jsonify(history_json(browse.history(db, example), multi=multi))


@bp.post("/examples/<int:example_id>/relabel")
@requires(*REVIEWERS, api=True)
def relabel_example(example_id: int):
    """Relabel an example as a reviewer: a ``review`` event replacing its current label
    (``label_id`` when it has several); the old label stays in the history."""
    body = json_body()
    db = get_session()
    example = get_example(db, example_id)
    project = projects.get_project(db, example.project_id)
    label_id = browse.relabel(db, project, g.user, example.id, tasks.annotation_in(project, body),
                              label_id=body.get("label_id"), now=utcnow())
    db.commit()
    label = db.get(Label, label_id)
    return jsonify({"label": label_event_json(label, g.user.name, True, multi=tasks.is_multi_label(project))}), 201
