"""A secret shown once after a redirect (Post/Redirect/Get): sealed into the session by the
form's POST, opened and dropped by the GET that shows it.

Flask's session cookie is signed, not encrypted: a secret put there as is could be read back
from the cookie (which is why the webhook secret is never a flash message). Sealed with Fernet
(``cryptography``: AES-CBC with an HMAC, keyed by a key derived from the app's ``SECRET_KEY``),
nothing but the service, holding the key, can open it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from flask import current_app, session


TTL_SECONDS = 600  # a secret not shown within ten minutes of its POST is not shown at all


def _fernet() -> Fernet:
    secret_key = current_app.secret_key
    raw_key = secret_key.encode() if isinstance(secret_key, str) else bytes(secret_key or b"")
    # A key of its own for this use, derived from SECRET_KEY (Fernet wants 32 url-safe base64 bytes).
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"hitl one-time secret\0" + raw_key).digest()))


def keep(name: str, value: Any) -> None:
    """Seal ``value`` (JSON-able) into the session under ``name`` for the next page to :func:`take`."""
    session[f"hitl_once_{name}"] = _fernet().encrypt(json.dumps(value).encode()).decode()


def take(name: str) -> Any | None:
    """The value kept under ``name``, removed from the session (None when there is none, or when
    it was sealed under another ``SECRET_KEY`` or more than ``TTL_SECONDS`` ago)."""
    sealed = session.pop(f"hitl_once_{name}", None)
    if not isinstance(sealed, str):
        return None
    try:
        return json.loads(_fernet().decrypt(sealed.encode(), ttl=TTL_SECONDS))
    except InvalidToken:
        return None
