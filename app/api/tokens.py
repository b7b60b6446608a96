"""API tokens in the API: my tokens (an admin: anyone's), create one (shown once), revoke."""

from __future__ import annotations

from flask import g, jsonify, request

from app.api import bp
from app.api.shapes import token_json
from app.api.common import json_body, pagination
from app.auth import ANY_ROLE, requires
from app.db import get_session
from labeling import users
from labeling.db import utcnow
from labeling.errors import Forbidden, InvalidInput, NotFound


@bp.get("/tokens")
@requires(*ANY_ROLE, api=True)
def list_tokens():
    """List my API tokens (an admin may pass ?user=NAME)."""
    limit, offset = pagination()
    db = get_session()
    owner = g.user
    name = request.args.get("user")
    if name is not None and name != g.user.name:
        if g.user.role != "admin":
            raise Forbidden("only an admin may list another user's tokens")
        owner = users.find_user(db, name)
        if owner is None:
            raise NotFound(f"no user named {name!r}")
    return jsonify({"tokens": [token_json(t, owner.name) for t in users.list_tokens(db, owner, limit=limit, offset=offset)],
                    "limit": limit, "offset": offset})


@bp.post("/tokens")
@requires(*ANY_ROLE, api=True)
def create_token():
    """Create an API token for me; its secret is in this answer only."""
    body = json_body()
    unknown = sorted(set(body) - {"name", "expires_in_days"})
    if unknown:  # a typo ("nme") would otherwise make an unnamed token
        raise InvalidInput.one("unknown field; valid ones are name, expires_in_days", field=unknown[0])
    db = get_session()
    name = body.get("name")
    token, secret = users.issue_token(db, g.user, name="" if name is None else name,
                                      expires_in_days=body.get("expires_in_days"), now=utcnow(), actor=g.user)
    db.commit()
    return jsonify({**token_json(token, g.user.name), "token": secret}), 201


@bp.delete("/tokens/<int:token_id>")
@requires(*ANY_ROLE, api=True)
def revoke_token(token_id: int):
    """Revoke one of my tokens (an admin: anyone's); it is refused from its next request."""
    db = get_session()
    token = users.get_token(db, token_id, g.user)
    users.revoke_token(db, token, actor=g.user, now=utcnow())
    db.commit()
    return "", 204
