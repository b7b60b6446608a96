"""The audit trail: who changed what, recorded in the transaction of the change, and read back.

Any part of the domain or the edge records an event with :func:`record` before its commit, so the
event exists exactly when the change does. Action names are dotted (``noun.verb``) and declared
in :data:`ACTIONS`, which the OpenAPI document lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.errors import InvalidInput
from labeling.models import AuditEvent, Project, User

# Every action recorded, with what it means. Add new ones here (the API validates filters on it).
ACTIONS: dict[str, str] = {
    "user.created": "a user was created",
    "user.role_changed": "a user's role was changed (details: from, to)",
    "user.deactivated": "a user was deactivated: sessions ended, tokens revoked",
    "user.reactivated": "a deactivated user was let in again",
    "user.password_reset": "an admin set a new generated password for a user",
    "user.password_changed": "a user changed their own password",
    "token.created": "an API token was created (target: its id; details: user, name, expires_at)",
    "token.revoked": "an API token was revoked",
    "project.created": "a project was created",
    "project.settings_changed": "a project's settings were changed (details: the keys given)",
    "project.renamed": "a project got a new name (target: the new name; details: from)",
    "project.labels_added": "labels were added to a project's label set (details: labels)",
    "project.members_changed": "a project's member list was replaced (details: before, after)",
    "project.webhook_secret_rotated": "a project's webhook secret was replaced by a new generated one",
    "project.webhook_tested": "a signed test event was sent to a project's webhook URL (details: url, status_code, error)",
    "project.archived": "a project was archived: read-only, hidden from annotators",
    "project.unarchived": "an archived project was opened for work again",
    "project.deleted": "a project and everything of it was deleted (details: name and how many rows went)",
    "import.started": "an import was started (target: the import id)",
    "export.downloaded": "a label set was exported (details: format, annotations, snapshot)",
    "retrain.requested": "someone asked for a retrain run (target: the run id)",
    "snapshot.created": "a snapshot of the labels was frozen (target: its number)",
    "flag.resolved": "a reviewer confirmed, corrected or dismissed a flag (target: the flag id)",
    "flag.reopened": "a reviewer took back their decision on a flag, which is open again (target: the flag id; details: was)",
    "example.relabeled": "a reviewer or admin relabeled an example (target: its id; details: from, to, replaced_label, label)",
}

# A name for changes made by no user account (the command line, the service itself).
Actor = User | str


def record(session: Session, actor: Actor, action: str, *, project_id: int | None = None,
           target: str | int | None = None, details: dict[str, Any] | None = None,
           now: datetime) -> AuditEvent:
    """Add an audit event to the caller's transaction (never commits).

    Parameters
    ----------
    actor : User or str
        Who made the change: a user, or a name such as ``"cli"`` for changes made by no account.
    action : str
        One of :data:`ACTIONS`; anything else is a programming error (``ValueError``).
    target : str or int, optional
        What was changed (a user name, a token or run id), stored as text.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; add it to labeling.audit.ACTIONS")
    event = AuditEvent(
        at=now, action=action, project_id=project_id, details=details or {},
        actor_id=actor.id if isinstance(actor, User) else None,
        actor_name=actor.name if isinstance(actor, User) else str(actor)[:80],
        target=None if target is None else str(target)[:200],
    )
    session.add(event)
    return event


def list_events(session: Session, *, actor: str | None = None, action: str | None = None,
                project_id: int | None = None, limit: int = 100, offset: int = 0) -> list[AuditEvent]:
    """Events newest first, filtered by actor name, action (a name, or a family such as ``user``)
    and project id."""
    query = select(AuditEvent)
    if actor:
        query = query.where(AuditEvent.actor_name == actor)
    if action:
        check_action_filter(action)
        query = query.where(AuditEvent.action.startswith(action + ".") if "." not in action
                            else AuditEvent.action == action)
    if project_id is not None:
        query = query.where(AuditEvent.project_id == project_id)
    return list(session.scalars(query.order_by(AuditEvent.id.desc()).limit(limit).offset(offset)))


def project_names(session: Session, project_ids: set[int]) -> dict[int, tuple[str | None, bool]]:
    """The name of each project the events name, and whether it was deleted since.

    Returns
    -------
    dict
        ``{project_id: (name, deleted)}``: a live project's current name and ``False``; a deleted
        one's name as its ``project.deleted`` event recorded it (``None`` when no event did) and
        ``True``.
    """
    if not project_ids:
        return {}
    live = dict(session.execute(select(Project.id, Project.name).where(Project.id.in_(project_ids))).all())
    gone = project_ids - live.keys()
    deleted = dict(session.execute(
        select(AuditEvent.project_id, AuditEvent.target)
        .where(AuditEvent.action == "project.deleted", AuditEvent.project_id.in_(gone))).all()) if gone else {}
    return {**{i: (name, False) for i, name in live.items()}, **{i: (deleted.get(i), True) for i in gone}}


def families() -> list[str]:
    """The nouns of the action names (``user``, ``token``, ...), in declaration order."""
    return list(dict.fromkeys(name.split(".")[0] for name in ACTIONS))


def check_action_filter(action: str) -> None:
    if action not in ACTIONS and action not in families():
        raise InvalidInput.one(f"must be one of {', '.join(ACTIONS)} (or a family: {', '.join(families())})",
                               field="action")
