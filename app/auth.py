"""Who is calling and what they may do: login sessions for pages, bearer tokens for the API.

Every view declares its roles with ``@requires(...)``; ``tests/app/test_routes_auth.py`` walks
the URL map and fails on a view that does not. Project access is enforced here too, once per
request: on a route of a project (its id in the URL, or the id of one of its examples, labels,
flags or runs), a user who may not see the project gets a 404, and a member is checked with the
role the project's member list gives them (``labeling.access``).
"""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any, Callable
from urllib.parse import urlparse

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from app.db import get_session
from labeling import access, throttle, users
from labeling.db import reading, utcnow
from labeling.models import Project, User
from labeling.roles import ROLES

ANY_ROLE = ROLES
REVIEWERS = ("admin", "reviewer")
ADMINS = ("admin",)
# URL arguments that name an object of a project, and its kind (``labeling.access.OWNED``).
PROJECT_OBJECTS = {"example_id": "example", "label_id": "label", "flag_id": "flag", "run_id": "run"}

login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please log in to see this page."

bp = Blueprint("auth", __name__)


class SessionUser(UserMixin):
    """The logged-in user as Flask-Login sees it (the domain model stays web-free)."""

    def __init__(self, user: User) -> None:
        self.id = user.id
        self.name = user.name
        self.role = user.role
        self.generation = user.session_generation

    def get_id(self) -> str:
        # Stored in the session cookie: a cookie from before a logout, a password change or a
        # deactivation names an older generation than the user's row, and is refused.
        return f"{self.id}:{self.generation}"


@login_manager.user_loader
def _load_user(session_id: str) -> SessionUser | None:
    user_id, _, generation = session_id.partition(":")
    if not (user_id.isdigit() and generation.isdigit()):
        return None
    with reading(get_session()) as db:
        user = users.get_user(db, int(user_id))
    if user is None or not user.active or user.session_generation != int(generation):
        return None
    return SessionUser(user)


def log_in(user: User) -> None:
    """Start (or, after a password change, renew) the browser session of ``user``."""
    login_user(SessionUser(user), duration=timedelta(hours=current_app.config["SESSION_HOURS"]))


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def requires(*roles: str, api: bool = False,
             read_project: bool = False) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Let only users with one of ``roles`` in; sets ``g.user`` to the domain user and ``g.role``
    to their role on this route (on a project's route, their role on that project).

    API views authenticate with a bearer token and answer 401/403 in the API error shape; page
    views use the login session and send anonymous visitors to the login page. A user who may
    not see the project of the route gets a 404, as if it did not exist. With ``read_project``
    (an API view on ``<project_id>`` that only reads the project), the project is read together
    with the caller, in one read transaction.
    """
    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user, role = _api_user(roles, read_project) if api else _page_user(roles)
            if role not in roles:
                abort(403, description=f"this needs the role {' or '.join(roles)}; you are {role}"
                                       + (" on this project" if role != user.role else ""))
            g.user, g.role = user, role
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        return wrapper

    return decorate


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view as open to anyone (login page, health check)."""
    view.required_roles = ()  # type: ignore[attr-defined]
    return view


def _api_user(roles: tuple[str, ...], read_project: bool = False) -> tuple[User, str]:
    token = _bearer_token()
    if token is None:
        abort(401, description="send an API token as 'Authorization: Bearer <token>'")
    now = utcnow()
    with reading(get_session()) as db:
        found = users.check_token(db, token, now=now)
        if found is None:
            abort(401, description="the API token is not valid (unknown, revoked or expired, or its user is deactivated)")
        api_token, user = found
        role = _role_on_route(db, user, roles)
        if read_project:
            # The view's ``get_project`` then finds it in the session without a query or a
            # transaction of its own (held on ``g``: the identity map keeps only referenced objects).
            g.project_in_url = db.get(Project, request.view_args["project_id"])
    if users.token_use_is_stale(api_token, now=now):  # a short write at most once an hour per token
        users.note_token_use(db, api_token.id, now=now)
        db.commit()
    return user, role


def _page_user(roles: tuple[str, ...]) -> tuple[User, str]:
    if not current_user.is_authenticated:
        if session.get("_user_id"):  # a login whose session ended since (the loader refused it)
            logout_user()
            g.session_ended = True
        abort(401)
    with reading(get_session()) as db:
        user = users.get_user(db, current_user.id)
        if user is None or not user.active or user.session_generation != current_user.generation:
            logout_user()
            g.session_ended = True  # the login page says why (app.errors)
            abort(401)
        return user, _role_on_route(db, user, roles)


def _role_on_route(db: Any, user: User, roles: tuple[str, ...]) -> str:
    """The caller's role on this route: on a route of a project, their role on that project
    (404 when they may not see it); elsewhere, and on an admins' route, their own role."""
    if user.role == "admin" or not set(roles) - {"admin"}:
        return user.role
    project_id, missing = _project_in_url(db, request.view_args or {})
    if project_id is None:
        return user.role
    role = access.role_in_project(db, user, project_id)
    if role is None:
        abort(404, description=missing)
    return role


def _project_in_url(db: Any, args: dict[str, Any]) -> tuple[int | None, str]:
    """The project the URL names (by its id, or by one of its objects), and what a caller who may
    not see it is told. An object of another project than the one in the URL is a 404."""
    project_id = args.get("project_id")
    missing = f"no project with id {project_id}"
    for key, kind in PROJECT_OBJECTS.items():
        if key not in args:
            continue
        owner = access.project_of(db, kind, args[key])
        if owner is not None and project_id is not None and owner != project_id:
            abort(404, description=f"no {kind} with id {args[key]} in this project")
        if owner is not None and project_id is None:
            project_id, missing = owner, f"no {kind} with id {args[key]}"
    return project_id, missing


def _safe_next(target: str | None) -> str:
    if target:
        parsed = urlparse(target)
        if not parsed.scheme and not parsed.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("ui.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    """Show the login form; log in with name and password."""
    error = None
    if request.method == "POST":
        name = request.form.get("name", "").strip()
        password = request.form.get("password", "")
        if not name or not password:
            error = "Enter your user name and password."
        else:
            wait, user = _check_login(name, password)
            if wait is not None:
                page = render_template("pages/login.html", error=f"Too many failed logins; try again in {wait} s.")
                return page, 429, {"Retry-After": str(wait)}
            if user is None:
                error = "Wrong user name or password."
            else:
                session.clear()
                session.permanent = True
                log_in(user)
                return redirect(_safe_next(request.args.get("next")))
    status = 400 if error else 200
    return render_template("pages/login.html", error=error), status


def _login_limits() -> throttle.LoginLimits:
    config = current_app.config
    return throttle.LoginLimits(per_address=config["LOGIN_FAILURES_PER_ADDRESS"],
                                per_account_and_address=config["LOGIN_FAILURES_PER_ACCOUNT"],
                                window=timedelta(seconds=config["LOGIN_FAILURE_WINDOW_SECONDS"]))


def _check_login(name: str, password: str) -> tuple[int | None, User | None]:
    """``(seconds to wait, None)`` while this name or address is over its limit, else
    ``(None, the user or None)``. The limit check and the password check (slow on purpose) run
    in a read-only transaction, so that no writer waits on them; the outcome is then counted in
    a short write of its own (committed at once: a failure counts though the page answers 400)."""
    limits, address = _login_limits(), request.remote_addr or ""
    with reading(get_session()) as db:
        if (wait := throttle.retry_after(db, limits, name, address, now=utcnow())) is not None:
            return wait, None
        user = users.authenticate(db, name, password)
    db = get_session()
    if user is None:
        throttle.record_failure(db, limits, name, address, now=utcnow())
    else:
        throttle.record_success(db, name, address)
    db.commit()
    return None, user


@bp.route("/logout", methods=["POST"])
@requires(*ANY_ROLE)
def logout() -> Any:
    """Log out (every browser of mine) and go back to the login page."""
    db = get_session()
    users.end_sessions(g.user)
    db.commit()
    logout_user()
    session.clear()
    flash("You are logged out.")
    return redirect(url_for("auth.login"))
