"""Every setting of the service, declared once with its default and help text.

Values come, in rising order of precedence, from the defaults below, the instance config file
(``instance/config.py``), and ``LABELING_<NAME>`` environment variables. ``docs/configuration.md``
documents each one; ``tests/test_docs.py`` keeps the two in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

ENV_PREFIX = "LABELING_"


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected a boolean (true/false), got {value!r}")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


SETTINGS: tuple[Setting, ...] = (
    Setting("DATABASE_URL", "", "SQLAlchemy URL of the database. Empty means a SQLite file "
            "`labeling.db` in the instance folder. PostgreSQL: `postgresql+psycopg://user@host/db`."),
    Setting("SECRET_KEY", "", "Key that signs session cookies and CSRF tokens. Empty means a random "
            "key generated once and kept in `instance/secret_key`."),
    Setting("SESSION_COOKIE_SECURE", False, "Send the session cookie over HTTPS only. Turn on "
            "behind TLS.", _bool),
    Setting("SESSION_HOURS", 12, "How long a browser login lasts, in hours.", int),
    Setting("LOGIN_FAILURES_PER_ADDRESS", 20, "Failed logins from one client address, within the window, "
            "after which that address must wait (429).", int),
    Setting("LOGIN_FAILURES_PER_ACCOUNT", 5, "Failed logins to one account from one address, within the "
            "window, after which that account must wait from that address (other addresses are not "
            "affected: nobody can lock a user out).", int),
    Setting("LOGIN_FAILURE_WINDOW_SECONDS", 900, "How long a failed login counts.", int),
    Setting("TRUSTED_PROXIES", 0, "Reverse proxies in front of the service that set X-Forwarded-For; the "
            "client address is read that many hops back. 0: the connection's own address (no header is "
            "trusted).", int),
    Setting("MAX_REQUEST_BYTES", 1024**2, "Largest request body, in bytes, on every route but the bulk ones; "
            "a larger one is refused (413) before it is read.", int),
    Setting("MAX_IMPORT_BYTES", 2 * 1024**3, "Largest request body, in bytes, on the bulk routes: "
            "imports (API and page) and predict.", int),
    Setting("IMPORT_WAIT_SECONDS", 15.0, "How long an API import request waits for its background job: "
            "finished by then, it answers 201 with the counts (or 422 with the problems); else 202 with "
            "the import to poll. A request's own ?wait= (0 up to this) overrides it.", float),
    Setting("LEASE_SECONDS", 300, "How long an example served to an annotator stays reserved "
            "for them before it returns to the queue.", int),
    Setting("MISTAKE_CONFIDENCE", 0.9, "Champion confidence at or above which a label that "
            "disagrees with the model triggers the 'it seems you made a mistake' warning.", float),
    Setting("KEY_MIN_VIEW_MS", 250, "How long, in milliseconds, an example is on the labeling or review page "
            "before a key acts on it: a key pressed sooner (a double press, a held key) is ignored, so nothing "
            "is labeled unseen. Backspace (undo) is exempt; 0 turns the guard off.", int),
    Setting("DB_CONNECT_TIMEOUT_SECONDS", 5.0, "How long to wait for a PostgreSQL connection (handshake "
            "included) before the request fails with a 503.", float),
    Setting("DB_STATEMENT_TIMEOUT_SECONDS", 30.0, "Longest a statement may run (PostgreSQL's statement_timeout) "
            "or wait for SQLite's write lock before the request fails with a 503.", float),
    Setting("SQLITE_SYNCHRONOUS", "FULL", "SQLite `synchronous` pragma (`FULL` or `NORMAL`). "
            "With WAL, both keep every committed label through a crash of the process; `FULL` "
            "also through a power loss."),
    Setting("SQLITE_WRITE_LOCK", True, "Queue SQLite write transactions of all processes on a file "
            "lock (`<database>.lock`), so that no annotator starves under load.", _bool),
    Setting("REDIS_URL", "", "Redis URL for RQ job workers (`hitl worker`)."),
    Setting("JOBS", "auto", "Where retrain runs execute: `thread` (a thread in the web process hands them to one "
            "long-lived child process at low CPU priority), "
            "`rq` (RQ workers on Redis), `inline` (inside the request or command that queued them), "
            "or `auto`: `rq` when REDIS_URL is set, else `thread`."),
    Setting("WEBHOOK_ALLOW_PRIVATE", False, "Allow webhook URLs that point at loopback, link-local or private "
            "addresses (a receiver on this machine or the local network). Off: such a URL is refused (422) and "
            "never contacted.", _bool),
    Setting("PUBLIC_URL", "http://127.0.0.1:5000", "Address of this service as others reach it; "
            "used for links in webhooks (the export URL)."),
    Setting("RUN_HEARTBEAT_SECONDS", 30.0, "How often a running retrain records that it is alive; "
            "a run silent for four beats is taken to be dead and is run again.", float),
    Setting("THREADS", 1, "Threads that numpy/scikit-learn may use in a retrain job. Keep 1 on "
            "small shared machines.", int),
    Setting("MLFLOW_TRACKING_URI", "", "When set (and the `mlflow` extra is installed), each "
            "finished retrain run is logged to this MLflow tracking server or store: params, "
            "holdout metrics, the promotion decision and the model artifact."),
    Setting("METRICS_TOKEN", "", "When set, /metrics answers only requests with "
            "`Authorization: Bearer <this token>`; empty leaves it open (bind to a private address)."),
    Setting("LOG_LEVEL", "INFO", "Python logging level."),
    Setting("DEMO_ADMIN_PASSWORD", "", "Password of the `admin` user that `hitl demo` creates. "
            "Empty means a random one, printed once."),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the settings given as ``LABELING_*`` environment variables, parsed."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(ENV_PREFIX + setting.name)
        if raw is None:
            continue
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{ENV_PREFIX}{setting.name}: {exc}") from None
    return values


def defaults() -> dict[str, Any]:
    return {s.name: s.default for s in SETTINGS}
