"""Projects in the API."""

from __future__ import annotations

from flask import g, jsonify

from app.api import bp
from app.api.common import json_body, pagination
from app.api.shapes import project_json
from app.auth import ADMINS, ANY_ROLE, REVIEWERS, requires
from app.db import get_session
from labeling import audit, projects
from labeling.db import utcnow


@bp.post("/projects")
@requires(*ADMINS, api=True)
def create_project():
    """Create a project."""
    body = json_body()
    db = get_session()
    now = utcnow()
    project = projects.create_project(db, body.get("name"), body.get("labels"), body.get("settings"), now=now)
    audit.record(db, g.user, "project.created", project_id=project.id, target=project.name, now=now)
    db.commit()
    out = project_json(project)
    if project.settings.get("webhook_secret"):
        out["settings"]["webhook_secret"] = project.settings["webhook_secret"]
    return jsonify(out), 201


@bp.get("/projects")
@requires(*ANY_ROLE, api=True)
def list_projects():
    """List projects."""
    limit, offset = pagination()
    items = projects.list_projects(get_session(), limit=limit, offset=offset)
    return jsonify({"projects": [project_json(p) for p in items], "limit": limit, "offset": offset})


@bp.get("/projects/<int:project_id>")
@requires(*REVIEWERS, api=True)
def get_project(project_id: int):
    """Show a project with its counts."""
    db = get_session()
    project = projects.get_project(db, project_id)
    return jsonify(project_json(project, counts=projects.project_counts(db, project.id),
                                champion=projects.champion_version(db, project)))


@bp.patch("/projects/<int:project_id>")
@requires(*ADMINS, api=True)
def update_project(project_id: int):
    """Change a project's settings."""
    body = json_body()
    db = get_session()
    project = projects.get_project(db, project_id)
    projects.update_settings(db, project, body.get("settings"))
    given = body.get("settings")
    audit.record(db, g.user, "project.settings_changed", project_id=project.id, target=project.name, now=utcnow(),
                 details={"keys": sorted(given) if isinstance(given, dict) else []})
    db.commit()
    return jsonify(project_json(project))
