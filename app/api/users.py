"""People in the API: list, create, change role, deactivate, reset a password (admin); change
one's own password."""

from __future__ import annotations

from flask import g, jsonify

from app.api import bp
from app.api.common import json_body, pagination
from app.api.shapes import user_json
from app.auth import ADMINS, ANY_ROLE, requires
from app.db import get_session
from labeling import users
from labeling.db import utcnow
from labeling.errors import InvalidInput, Problem

PATCHABLE = ("role", "active")


@bp.get("/users")
@requires(*ADMINS, api=True)
def list_users():
    """List users, by name."""
    limit, offset = pagination()
    items = users.list_users(get_session(), limit=limit, offset=offset)
    return jsonify({"users": [user_json(u) for u in items], "limit": limit, "offset": offset})


@bp.post("/users")
@requires(*ADMINS, api=True)
def create_user():
    """Create a user (without a password: a token-only account)."""
    body = json_body()
    db = get_session()
    user = users.create_user(db, body.get("name"), body.get("role"), password=body.get("password"), now=utcnow(),
                             actor=g.user)
    db.commit()
    return jsonify(user_json(user)), 201


@bp.patch("/users/<int:user_id>")
@requires(*ADMINS, api=True)
def update_user(user_id: int):
    """Change a user's role and/or deactivate or reactivate them."""
    body = json_body()
    unknown = [k for k in body if k not in PATCHABLE]
    if unknown:
        raise InvalidInput("only role and active can be changed here",
                           [Problem(f"unknown field; send {' or '.join(PATCHABLE)}", field=k) for k in unknown])
    db = get_session()
    user = users.user_by_id(db, user_id)
    now = utcnow()
    if "role" in body:
        users.change_role(db, user, body["role"], actor=g.user, now=now)
    if "active" in body:
        users.set_active(db, user, body["active"], actor=g.user, now=now)
    db.commit()
    return jsonify(user_json(user))


@bp.post("/users/<int:user_id>/reset-password")
@requires(*ADMINS, api=True)
def reset_password(user_id: int):
    """Give a user a new generated password, returned this once; their sessions end."""
    db = get_session()
    user = users.user_by_id(db, user_id)
    password = users.reset_password(db, user, actor=g.user, now=utcnow())
    db.commit()
    return jsonify({"user": user_json(user), "password": password})


@bp.post("/account/password")
@requires(*ANY_ROLE, api=True)
def change_my_password():
    """Change the caller's own password (the current one is required); their sessions end.
    Their API tokens stay valid: revoke those apart."""
    body = json_body()
    db = get_session()
    users.change_password(db, g.user, body.get("current_password"), body.get("new_password"), now=utcnow())
    db.commit()
    return "", 204
