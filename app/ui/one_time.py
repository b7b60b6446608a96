"""A secret shown once after a redirect (Post/Redirect/Get): sealed into the session by the
form's POST, opened and dropped by the GET that shows it.

Flask's session cookie is signed, not encrypted: a secret put there as is could be read back
from the cookie (which is why the webhook secret is never a flash message). Sealed, the cookie
carries a random nonce and the value XORed with a keystream of HMAC-SHA256 blocks keyed by the
app's ``SECRET_KEY`` (a pseudorandom function in counter mode); the cookie's signature keeps it
whole. Nothing but the service, holding the key, can open it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from flask import current_app, session

_NONCE = 16


def _keystream(nonce: bytes, size: int) -> bytes:
    secret_key = current_app.secret_key
    raw_key = secret_key.encode() if isinstance(secret_key, str) else bytes(secret_key or b"")
    key = hmac.new(raw_key, b"hitl one-time secret in the session", hashlib.sha256).digest()
    blocks = (hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(size // 32 + 1))
    return b"".join(blocks)[:size]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream))


def keep(name: str, value: Any) -> None:
    """Seal ``value`` (JSON-able) into the session under ``name`` for the next page to :func:`take`."""
    plain = json.dumps(value).encode()
    nonce = secrets.token_bytes(_NONCE)
    session[f"hitl_once_{name}"] = base64.b64encode(nonce + _xor(plain, _keystream(nonce, len(plain)))).decode()


def take(name: str) -> Any | None:
    """The value kept under ``name``, removed from the session (None when there is none)."""
    sealed = session.pop(f"hitl_once_{name}", None)
    if not isinstance(sealed, str):
        return None
    data = base64.b64decode(sealed)
    nonce, body = data[:_NONCE], data[_NONCE:]
    return json.loads(_xor(body, _keystream(nonce, len(body))))
