"""Load settings into ``app.config``: defaults, then instance/config.py, then LABELING_* env."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask

from app.settings import SETTINGS, SETTINGS_BY_NAME, defaults, from_environment


def load_config(app: Flask, overrides: dict[str, Any] | None = None) -> None:
    instance = Path(app.instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    values = defaults()
    file_values: dict[str, Any] = {}
    config_file = instance / "config.py"
    if config_file.exists():
        namespace: dict[str, Any] = {}
        exec(compile(config_file.read_text(), str(config_file), "exec"), namespace)
        file_values = {k: v for k, v in namespace.items() if k in SETTINGS_BY_NAME}
    values.update(file_values)
    values.update(from_environment())
    values.update(overrides or {})
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = f"sqlite:///{instance / 'labeling.db'}"
    if not values["SECRET_KEY"]:
        values["SECRET_KEY"] = _instance_secret(instance)
    app.config.update({k: values[k] for k in (s.name for s in SETTINGS)})
    # Extra keys a test may pass (TESTING, WTF_CSRF_ENABLED, ...).
    app.config.update({k: v for k, v in (overrides or {}).items() if k not in SETTINGS_BY_NAME})
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=values["SESSION_COOKIE_SECURE"],
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=values["SESSION_COOKIE_SECURE"],
        PERMANENT_SESSION_LIFETIME=timedelta(hours=values["SESSION_HOURS"]),
        JSON_SORT_KEYS=False,
    )


def _instance_secret(instance: Path) -> str:
    path = instance / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
