"""The people page (admin): list users, create one, change a role, deactivate or reactivate,
reset a password (the generated one is shown once)."""

from __future__ import annotations

from typing import Any, Callable

from flask import g, redirect, render_template, request, url_for

from app.auth import ADMINS, requires
from app.db import get_session
from app.errors import STATUS_OF
from app.ui import bp, one_time, page_number
from labeling import users
from labeling.db import utcnow
from labeling.errors import DomainError, InvalidInput
from labeling.roles import ROLES

PAGE_SIZE = 100
NO_STORE = {"Cache-Control": "no-store"}  # a page with a password on it stays out of the browser's cache


def _render(*, notice: str | None = None, error: str | None = None, new_password: tuple[str, str] | None = None,
            status: int = 200) -> Any:
    """The whole page, or for an htmx request the people section alone (errors included, with
    a 200: htmx swaps no 4xx answer)."""
    partial = bool(request.headers.get("HX-Request"))
    page = page_number()
    people = users.list_users(get_session(), limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    body = render_template("partials/_users.html" if partial else "pages/users.html",
                           users=people[:PAGE_SIZE], page=page, has_more=len(people) > PAGE_SIZE, roles=ROLES, me=g.user,
                           notice=notice, error=error, new_password=new_password)
    return body, 200 if partial else status, NO_STORE if new_password else {}


def _act(change: Callable[[], tuple[str, tuple[str, str] | None]]) -> Any:
    """Run ``change`` (which returns a notice and maybe a one-time password), commit, and render
    (htmx) or redirect to the page that shows the outcome once; a domain error rolls back and is
    shown on the page."""
    db = get_session()
    try:
        notice, new_password = change()
    except DomainError as exc:
        db.rollback()
        message = exc.message
        if isinstance(exc, InvalidInput) and exc.problems:
            message = "; ".join(str(p) for p in exc.problems)
        status = next((s for cls, s in STATUS_OF.items() if isinstance(exc, cls)), 400)
        return _render(error=message, status=status)
    db.commit()
    if request.headers.get("HX-Request"):  # swapped into the page: the address stays /users, a reload GETs it
        return _render(notice=notice, new_password=new_password)
    # Post/Redirect/Get: a reload of the answer must not create the user or reset the password again
    one_time.keep("people_done", {"notice": notice, "new_password": list(new_password) if new_password else None})
    return redirect(url_for("ui.users_page"), code=303)


@bp.get("/users")
@requires(*ADMINS)
def users_page():
    """List users, with the forms to manage them, and the outcome of the change just made (once)."""
    done = one_time.take("people_done") or {}
    new_password = done.get("new_password")
    return _render(notice=done.get("notice"), new_password=tuple(new_password) if new_password else None)


@bp.post("/users")
@requires(*ADMINS)
def create_user():
    """Create a user; an empty password field makes a generated one, shown once."""
    def change() -> tuple[str, tuple[str, str] | None]:
        name, role = request.form.get("name", "").strip(), request.form.get("role", "")
        password = request.form.get("password", "")
        generated = not password
        if generated:
            password = users.new_password()
        user = users.create_user(get_session(), name, role, password=password, now=utcnow(), actor=g.user)
        return f"Created {user.role} {user.name}.", (user.name, password) if generated else None
    return _act(change)


@bp.post("/users/<int:user_id>/role")
@requires(*ADMINS)
def change_role(user_id: int):
    """Give a user another role."""
    def change() -> tuple[str, None]:
        user = users.user_by_id(get_session(), user_id)
        users.change_role(get_session(), user, request.form.get("role"), actor=g.user, now=utcnow())
        return f"{user.name} is now {user.role}.", None
    return _act(change)


@bp.post("/users/<int:user_id>/active")
@requires(*ADMINS)
def set_active(user_id: int):
    """Deactivate (sessions end, tokens are revoked) or reactivate a user."""
    def change() -> tuple[str, None]:
        user = users.user_by_id(get_session(), user_id)
        active = request.form.get("active") == "1"
        users.set_active(get_session(), user, active, actor=g.user, now=utcnow())
        return f"{user.name} is {'active again' if active else 'deactivated: logged out, tokens revoked'}.", None
    return _act(change)


@bp.post("/users/<int:user_id>/password")
@requires(*ADMINS)
def reset_password(user_id: int):
    """Give a user a new generated password (shown once); their sessions end."""
    def change() -> tuple[str, tuple[str, str]]:
        user = users.user_by_id(get_session(), user_id)
        password = users.reset_password(get_session(), user, actor=g.user, now=utcnow())
        return f"New password for {user.name}.", (user.name, password)
    return _act(change)
