"""Browser pages (Flask + htmx). Views parse, call one labeling function, render."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from flask import Blueprint, request

from labeling import tasks
from labeling.models import Project

bp = Blueprint("ui", __name__)

# Sent by a form with a multi-label project's checked ``labels``: an empty set ("none of these")
# is then told from a form that sent no annotation at all.
LABELS_MARKER = "labels_sent"
MAX_PAGE = 10**9  # keeps a list's offset inside a 64-bit integer; a page past the end is empty


def page_number() -> int:
    """The ``page`` query argument: 1 when missing or not a positive number, at most ``MAX_PAGE``."""
    return min(max(1, request.args.get("page", 1, type=int) or 1), MAX_PAGE)


def filter_args(source: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    """The filters among ``names`` that ``source`` (query arguments, a form) gives, stripped; blank ones left out."""
    return {k: v.strip() for k in names if (v := source.get(k, "")).strip()}


def form_annotation(project: Project) -> Any:
    """The annotation a page's form sends, not yet checked: ``label`` (one name) for a
    single-label project, the multi-valued ``labels`` (possibly empty when the marker came alone)
    for a multi-label one; the other task's field is a 422 naming it (``tasks.annotation_in``)."""
    body: dict[str, Any] = {}
    if "label" in request.form:
        body["label"] = request.form.get("label")
    if "labels" in request.form or LABELS_MARKER in request.form:
        body["labels"] = request.form.getlist("labels")
    return tasks.annotation_in(project, body)


@bp.app_template_filter("annotation")
def annotation_text(value: Any, project: Project) -> str:
    """An annotation as a page shows it: the label's name, or a set as ``a, b`` (``none of these``
    when empty). Takes the stored text (labeling/tasks.py) or the list the API shapes decode;
    an undo's null is the empty string."""
    if value is None:
        return ""
    if not tasks.is_multi_label(project):
        return str(value)
    names = value if isinstance(value, list) else tasks.decode(project, value)
    return ", ".join(names) if names else "none of these"


FLAG_REASON_TEXT = {"model_disagrees": "a model that never saw this label predicts otherwise",
                    "annotators_disagree": "annotators disagree", "kept_warning": "kept although the model warned"}


@bp.app_template_filter("flag_reason")
def flag_reason(reason: str) -> str:
    """Why a flag was raised, in words (the API keeps the codes)."""
    return FLAG_REASON_TEXT.get(reason, reason)


@bp.app_template_filter("counted")
def counted(n: int, noun: str) -> str:
    """``1 example``, ``2 examples``: a count and its noun (plural by an s)."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


@bp.app_template_filter("label_set")
def label_set(value: Any, project: Project) -> list[str]:
    """A multi-label project's stored set as its list of names (empty for none)."""
    return [] if value is None else list(tasks.decode(project, value))


from app.ui import account, audit, browse, dashboard, exports, imports, label, projects, review, runs, settings, users  # noqa: E402,F401  (registers routes)
