"""Browser pages (Flask + htmx). Views parse, call one labeling function, render."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from labeling import tasks
from labeling.models import Project

bp = Blueprint("ui", __name__)


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


from app.ui import account, audit, browse, dashboard, imports, label, projects, review, runs, settings, users  # noqa: E402,F401  (registers routes)
