"""Accounts: users with roles, passwords, API tokens."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from labeling.errors import Conflict, InvalidInput
from labeling.models import ApiToken, User
from labeling.roles import ROLES
from labeling.passwords import check_password, hash_password, hash_token, new_token

NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
MIN_PASSWORD = 8


def create_user(
    session: Session, name: str, role: str, *, password: str | None, now: datetime
) -> User:
    """Add a user. ``password`` may be None for a token-only account."""
    if not NAME_RE.match(name or ""):
        raise InvalidInput.one(
            "name must be 1-80 letters, digits or _ . @ -", field="name"
        )
    if role not in ROLES:
        raise InvalidInput.one(f"role must be one of {', '.join(ROLES)}", field="role")
    if password is not None and len(password) < MIN_PASSWORD:
        raise InvalidInput.one(
            f"password must have at least {MIN_PASSWORD} characters", field="password"
        )
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} exists already")
    user = User(
        name=name,
        role=role,
        password_hash=hash_password(password) if password is not None else None,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


# A hash of no one's password, with the real cost parameters.
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def authenticate(session: Session, name: str, password: str) -> User | None:
    """Return the active user with this name and password, else None."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None or not user.active or not user.password_hash:
        # Spend the same time as a real check (token-only accounts too), so that names cannot be
        # probed by timing.
        check_password(_DUMMY_HASH, password)
        return None
    return user if check_password(user.password_hash, password) else None


def create_token(session: Session, user: User, *, name: str = "", now: datetime) -> str:
    """Create an API token for ``user`` and return it; only its hash is stored."""
    token = new_token()
    session.add(ApiToken(user_id=user.id, token_hash=hash_token(token), name=name, created_at=now))
    session.flush()
    return token


# Looked up on every API request, so built once.
_USER_BY_TOKEN_HASH = select(User).join(ApiToken).where(ApiToken.token_hash == bindparam("token_hash"))


def user_for_token(session: Session, token: str) -> User | None:
    user = session.execute(_USER_BY_TOKEN_HASH, {"token_hash": hash_token(token)}).scalar_one_or_none()
    return user if user is not None and user.active else None


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))
