"""One error shape per surface, mapped in one place.

Under ``/api``: ``{"error": "...", "errors": [{"field", "line", "message"}]}``. Pages: an error
page (or, for an htmx request, a small message fragment).
"""

from __future__ import annotations

import logging
from typing import Any

from urllib.parse import urlsplit

from flask import Flask, flash, g, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from labeling.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound, Unavailable

log = logging.getLogger(__name__)

STATUS_OF = {InvalidInput: 422, NotFound: 404, Conflict: 409, Forbidden: 403, Unavailable: 503}


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def api_error(status: int, message: str, problems: list[dict[str, Any]] | None = None, **extra: Any):
    body: dict[str, Any] = {"error": message, "errors": problems or []}
    body.update(extra)
    return jsonify(body), status


def _page_error(status: int, message: str):
    template = "partials/_error.html" if request.headers.get("HX-Request") else "errors/error.html"
    return render_template(template, status=status, message=message), status


# Words of the drivers' messages when the database is away or busy, not wrong: PostgreSQL's
# connection failures and statement timeout, SQLite's lock.
_UNAVAILABLE = ("timeout", "timed out", "could not connect", "connection", "server closed", "terminating",
                "canceling statement", "database is locked", "database is busy")


def _is_unavailable(exc: OperationalError) -> bool:
    message = str(exc.orig).lower()
    return exc.connection_invalidated or any(word in message for word in _UNAVAILABLE)


ENDED = ("Your session ended: you logged out (here, in another tab, or everywhere), your password was "
         "changed, or an admin deactivated your account. Log in again to go on.")


def _log_in_again():
    """A request sent after its session ended (a logout in another tab or everywhere, a new
    password, a deactivation): to the login page, saying why, and back to the page it came from."""
    if request.method == "GET" and not request.headers.get("HX-Request"):
        back = request.full_path.rstrip("?")
    else:
        page = urlsplit(request.headers.get("HX-Current-URL") or request.referrer or "")
        back = page.path + (f"?{page.query}" if page.query else "")
    flash(ENDED)
    target = url_for("auth.login", next=back or None)
    if request.headers.get("HX-Request"):
        return "", 401, {"HX-Redirect": target}
    return redirect(target)


def _to_login():
    """A page asked for without a login: to the login page (saying why when a session ended)."""
    if g.get("session_ended"):
        return _log_in_again()
    if request.headers.get("HX-Request"):
        return "", 401, {"HX-Redirect": url_for("auth.login")}
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError):
        status = next((s for cls, s in STATUS_OF.items() if isinstance(exc, cls)), 400)
        if is_api_request():
            if isinstance(exc, InvalidInput):
                extra = {"total_errors": exc.total} if exc.total > len(exc.problems) else {}
                return api_error(status, exc.message, [p.as_dict() for p in exc.problems], **extra)
            return api_error(status, exc.message)
        message = exc.message
        if isinstance(exc, InvalidInput) and exc.problems:
            one = len(exc.problems) == 1 and exc.problems[0].message == exc.message
            # InvalidInput.one's message is its problem's: said once, with the field or line.
            message = str(exc.problems[0]) if one else message + ": " + "; ".join(str(p) for p in exc.problems[:5])
        return _page_error(status, message)

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        if not current_user.is_authenticated and request.endpoint != "auth.login":
            return _log_in_again()
        return _page_error(400, f"The form expired or was not sent by this site ({exc.description}). Reload the page and try again.")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge):
        limit = request.max_content_length
        message = f"the request body is too large: at most {limit:,} bytes on this route" if limit else exc.description
        return api_error(413, message, [{"field": "body", "message": message}]) if is_api_request() \
            else _page_error(413, message[0].upper() + message[1:] + ".")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        status = exc.code or 500
        if is_api_request():
            return api_error(status, exc.description or exc.name)
        if status == 401:
            return _to_login()
        return _page_error(status, exc.description or exc.name)

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError):
        # Unreachable, silent past its timeout, or locked past the wait: the request may be retried.
        # Anything else of this class (a missing table: migrations not run) is a bug to log.
        if not _is_unavailable(exc):
            return _unexpected(exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.path, str(exc).splitlines()[0])
        message = "the database did not answer in time; try again shortly"
        if is_api_request():
            response, status = api_error(503, message)
        else:
            response, status = _page_error(503, "The database did not answer in time; try again shortly.")
        return response, status, {"Retry-After": "5"}

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        if is_api_request():
            return api_error(500, "internal error; it was logged")
        return _page_error(500, "Something went wrong on our side; it was logged.")
