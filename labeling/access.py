"""Who may work on which project: its member list, and a user's role on a project.

A project without members is open to every user, each with their own role. A project with
members is seen only by them, each with the role the list gives them there, and by admins
(who keep theirs). The web edge asks :func:`role_in_project` once per request, where it resolves
the project in the URL (``app.auth.requires``); lists filter with :func:`visible_to`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, or_, select, true
from sqlalchemy.orm import Session

from labeling import audit
from labeling.errors import InvalidInput, Problem
from labeling.models import MEMBER_ROLES, Example, Label, LabelFlag, Project, ProjectMember, RetrainRun, User

MAX_MEMBERS = 10_000

# The objects a URL can name, and their table: each belongs to one project.
OWNED = {"example": Example, "label": Label, "flag": LabelFlag, "run": RetrainRun}


def role_in_project(session: Session, user: User, project_id: int) -> str | None:
    """The role ``user`` has on the project, or None when they may not see it.

    Admins keep their role everywhere (no query). A project that does not exist is None too: a
    missing project and a hidden one look the same to a non-member (a 404 either way, never a
    403 for one and a 404 for the other).
    """
    if user.role == "admin":
        return user.role
    restricted = exists().where(ProjectMember.project_id == project_id)
    mine = (select(ProjectMember.role)
            .where(ProjectMember.project_id == project_id, ProjectMember.user_id == user.id).scalar_subquery())
    row = session.execute(select(Project.id, restricted, mine).where(Project.id == project_id)).first()
    if row is None:
        return None
    if not row[1]:
        return user.role
    return row[2]


def project_of(session: Session, kind: str, object_id: int) -> int | None:
    """The id of the project an example, label, flag or run belongs to (None: no such object)."""
    table = OWNED[kind]
    return session.scalar(select(table.project_id).where(table.id == object_id))


def visible_to(user: User) -> ColumnElement[bool]:
    """A condition on ``Project``: the projects ``user`` sees in lists. Admins see every one;
    others the open ones and those they are members of; annotators no archived one."""
    if user.role == "admin":
        return true()
    member = exists().where(ProjectMember.project_id == Project.id)
    mine = exists().where(ProjectMember.project_id == Project.id, ProjectMember.user_id == user.id)
    condition = or_(~member, mine)
    if user.role == "annotator":
        condition = and_(condition, Project.archived_at.is_(None))
    return condition


def list_members(session: Session, project_id: int) -> list[dict[str, str]]:
    """``[{"user": name, "role": role}, ...]`` sorted by name; empty: open to every user."""
    rows = session.execute(
        select(User.name, ProjectMember.role).join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project_id).order_by(User.name))
    return [{"user": name, "role": role} for name, role in rows]


def replace_members(session: Session, project: Project, given: Any, *, actor: audit.Actor,
                    now: datetime) -> list[dict[str, str]]:
    """Make ``given`` (``[{"user": name, "role": "annotator" | "reviewer"}, ...]``) the project's
    member list; an empty list opens the project to every user. Audited as
    ``project.members_changed`` when the list changes.

    Raises
    ------
    InvalidInput
        Naming each bad entry (``members[i].user``, ``members[i].role``): an unknown user, a
        repeated one, a role that is not a member role.
    """
    wanted = _validated(session, given)
    before = list_members(session, project.id)
    session.execute(delete(ProjectMember).where(ProjectMember.project_id == project.id))
    for user_id, role in wanted.values():
        session.add(ProjectMember(project_id=project.id, user_id=user_id, role=role))
    session.flush()
    after = list_members(session, project.id)
    if after != before:
        audit.record(session, actor, "project.members_changed", project_id=project.id, target=project.name,
                     details={"before": before, "after": after}, now=now)
    return after


def _validated(session: Session, given: Any) -> dict[str, tuple[int, str]]:
    """``{name: (user id, role)}`` of a member list, or InvalidInput naming every problem."""
    if not isinstance(given, list):
        raise InvalidInput.one('must be a list of {"user", "role"}', field="members")
    if len(given) > MAX_MEMBERS:
        raise InvalidInput.one(f"at most {MAX_MEMBERS} members", field="members")
    names = [item.get("user") if isinstance(item, dict) else None for item in given]
    known = {name: user_id for name, user_id in session.execute(select(User.name, User.id).where(
        User.name.in_([n for n in names if isinstance(n, str)])))} if names else {}
    problems: list[Problem] = []
    wanted: dict[str, tuple[int, str]] = {}
    for i, item in enumerate(given):
        if not isinstance(item, dict):
            problems.append(Problem('must be an object {"user", "role"}', field=f"members[{i}]"))
            continue
        name, role = item.get("user"), item.get("role")
        if not isinstance(name, str) or name not in known:
            problems.append(Problem(f"no user named {name!r}", field=f"members[{i}].user"))
        elif name in wanted:
            problems.append(Problem(f"{name} is listed twice", field=f"members[{i}].user"))
        if role not in MEMBER_ROLES:
            problems.append(Problem(f"must be one of {', '.join(MEMBER_ROLES)}", field=f"members[{i}].role"))
        unknown_keys = sorted(set(item) - {"user", "role"})
        if unknown_keys:
            problems.append(Problem("only user and role are allowed", field=f"members[{i}].{unknown_keys[0]}"))
        if not problems and isinstance(name, str):
            wanted[name] = (known[name], role)
    if problems:
        raise InvalidInput("invalid member list", problems)
    return wanted
