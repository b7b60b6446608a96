"""Projects in the API: create, list, read, change settings, archive, members, delete."""

from __future__ import annotations

from flask import g, jsonify, request

from app import jobs
from app.api import bp
from app.api.common import json_body, pagination
from app.api.shapes import project_json
from app.auth import ADMINS, ANY_ROLE, REVIEWERS, requires
from app.db import get_session
from labeling import access, audit, project_edits, projects, runs
from labeling.db import utcnow
from labeling.deletion import delete_project as delete_everything
from labeling.errors import InvalidInput

PATCH_FIELDS = ("settings", "archived", "name", "add_labels")


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
    out = project_json(project, admin=True)
    if project.settings.get("webhook_secret"):
        out["settings"]["webhook_secret"] = project.settings["webhook_secret"]
    return jsonify(out), 201


@bp.get("/projects")
@requires(*ANY_ROLE, api=True)
def list_projects():
    """List the projects I may see."""
    limit, offset = pagination()
    items = projects.list_projects(get_session(), limit=limit, offset=offset, visible_by=g.user)
    return jsonify({"projects": [project_json(p, admin=g.user.role == "admin") for p in items], "limit": limit, "offset": offset})


@bp.get("/projects/<int:project_id>")
@requires(*REVIEWERS, api=True)
def get_project(project_id: int):
    """Show a project with its counts."""
    db = get_session()
    project = projects.get_project(db, project_id)
    return jsonify(project_json(project, admin=g.user.role == "admin", counts=projects.project_counts(db, project.id),
                                champion=projects.champion_version(db, project)))


@bp.patch("/projects/<int:project_id>")
@requires(*ADMINS, api=True)
def update_project(project_id: int):
    """Change a project's settings or name, add labels; archive or unarchive it."""
    body = json_body()
    unknown = sorted(set(body) - set(PATCH_FIELDS))
    if unknown:
        raise InvalidInput.one(f"unknown field; valid ones are {', '.join(PATCH_FIELDS)}", field=unknown[0])
    db = get_session()
    project = projects.get_project(db, project_id)
    now = utcnow()
    changed: list[str] = []
    if "settings" in body:
        given, before = body["settings"], projects.config(project)
        projects.update_settings(db, project, given)
        audit.record(db, g.user, "project.settings_changed", project_id=project.id, target=project.name, now=now,
                     details={"keys": sorted(given) if isinstance(given, dict) else []})
        changed = [k for k in (given or {}) if getattr(projects.config(project), k, None) != getattr(before, k, None)]
    if "name" in body:
        project_edits.rename_project(db, project, body["name"], actor=g.user, now=now)
    if "add_labels" in body:
        project_edits.add_labels(db, project, body["add_labels"], actor=g.user, now=now)
    if "archived" in body:
        projects.set_archived(db, project, body["archived"], actor=g.user, now=now)
    run_id = runs.request_after_settings(db, project, changed, now=now)
    db.commit()
    jobs.queued(run_id)
    return jsonify(project_json(project, admin=True))


@bp.delete("/projects/<int:project_id>")
@requires(*ADMINS, api=True)
def delete_project(project_id: int):
    """Delete a project and everything of it; ?confirm= must be its name."""
    db = get_session()
    project = projects.get_project(db, project_id)
    delete_everything(db, project, request.args.get("confirm"), actor=g.user, now=utcnow())
    db.commit()
    return "", 204


@bp.get("/projects/<int:project_id>/members")
@requires(*REVIEWERS, api=True)
def members(project_id: int):
    """Who may work on the project, with their role there (empty: every user)."""
    db = get_session()
    projects.get_project(db, project_id)
    return jsonify({"members": access.list_members(db, project_id)})


@bp.put("/projects/<int:project_id>/members")
@requires(*ADMINS, api=True)
def replace_members(project_id: int):
    """Replace the member list (an empty list opens the project to every user)."""
    body = json_body()
    if "members" not in body:
        raise InvalidInput.one('send {"members": [{"user", "role"}, ...]}', field="members")
    db = get_session()
    project = projects.get_project(db, project_id)
    listed = access.replace_members(db, project, body["members"], actor=g.user, now=utcnow())
    db.commit()
    return jsonify({"members": listed})
