"""My account: change my password; my API tokens (create, shown once; revoke)."""

from __future__ import annotations

from typing import Any

from flask import flash, g, redirect, render_template, request, url_for

from app.auth import ANY_ROLE, log_in, requires
from app.db import get_session
from app.ui import bp, one_time
from labeling import users
from labeling.db import utcnow
from labeling.errors import InvalidInput

NO_STORE = {"Cache-Control": "no-store"}  # a page with a secret on it stays out of the browser's cache
# The first is the form's default: a token that never expires is a choice, not what a hurried click makes.
EXPIRY_CHOICES = (("90", "in 90 days"), ("7", "in 7 days"), ("30", "in 30 days"), ("365", "in a year"), ("", "never"))


@bp.get("/account")
@requires(*ANY_ROLE)
def account():
    """Show my account: the password form."""
    return render_template("pages/account.html", errors=None)


@bp.post("/account/password")
@requires(*ANY_ROLE)
def change_password():
    """Change my password (the current one is required); my other sessions end."""
    db = get_session()
    if request.form.get("new_password") != request.form.get("confirm_password"):
        return render_template("pages/account.html", errors=["The new passwords differ."]), 422
    try:
        users.change_password(db, g.user, request.form.get("current_password", ""), request.form.get("new_password", ""),
                              now=utcnow())
    except InvalidInput as exc:
        db.rollback()
        # The page's words for the fields, not the form's names ("new_password must have ...").
        words = {"new_password": "The new password", "current_password": "The current password"}
        errors = [p.message.replace(p.field, words[p.field], 1) if p.field in words else p.message for p in exc.problems]
        return render_template("pages/account.html", errors=errors), 422
    db.commit()
    log_in(g.user)  # this browser stays logged in, with the new session generation
    flash("Password changed. Every other session of yours has ended.")
    return redirect(url_for("ui.account"))


def _tokens_page(*, new_token: dict[str, str] | None = None, errors: list[str] | None = None, status: int = 200) -> Any:
    db = get_session()
    body = render_template("pages/tokens.html", tokens=users.list_tokens(db, g.user), new_token=new_token,
                           errors=errors, expiry_choices=EXPIRY_CHOICES, now=utcnow())
    return body, status, NO_STORE if new_token else {}


@bp.get("/account/tokens")
@requires(*ANY_ROLE)
def tokens():
    """List my API tokens, with the one just created (shown this once)."""
    return _tokens_page(new_token=one_time.take("new_token"))


@bp.post("/account/tokens")
@requires(*ANY_ROLE)
def create_token():
    """Create a token, then redirect to the list that shows it once (a reload creates no other)."""
    db = get_session()
    days = request.form.get("expires_in_days", "")
    try:
        expires_in_days = int(days) if days else None
    except ValueError:
        expires_in_days = -1  # refused below with the field's message
    name = request.form.get("name", "").strip() or "web"  # too long: refused below, never cut
    try:
        _, secret = users.issue_token(db, g.user, name=name, expires_in_days=expires_in_days, now=utcnow(), actor=g.user)
    except InvalidInput as exc:
        db.rollback()
        return _tokens_page(errors=[p.message for p in exc.problems], status=422)
    db.commit()
    one_time.keep("new_token", {"secret": secret, "name": name})  # sealed: the session cookie is signed, not encrypted
    return redirect(url_for("ui.tokens"), code=303)


@bp.post("/account/tokens/<int:token_id>/revoke")
@requires(*ANY_ROLE)
def revoke_token(token_id: int):
    """Revoke one of my tokens."""
    db = get_session()
    token = users.get_token(db, token_id, g.user)
    if token.user_id != g.user.id:  # this page manages my own tokens only, admin or not
        return _tokens_page(errors=[f"no token {token_id} of yours"], status=404)
    name = token.name
    users.revoke_token(db, token, actor=g.user, now=utcnow())
    db.commit()
    flash(f"Token {name!r} revoked.")
    return redirect(url_for("ui.tokens"))
