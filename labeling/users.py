"""Accounts: users with roles, passwords and login sessions; API tokens. Changes are audited."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from labeling import audit
from labeling.audit import Actor
from labeling.db import iso
from labeling.errors import Conflict, InvalidInput, NotFound
from labeling.models import ApiToken, User
from labeling.roles import ROLES
from labeling.passwords import check_password, hash_password, hash_token, new_token

NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # scrypt hashes any length; a megabyte of password is only a cost
MAX_TOKEN_DAYS = 3650
LAST_USED_PRECISION = timedelta(hours=1)


def create_user(
    session: Session, name: str, role: str, *, password: str | None, now: datetime, actor: Actor | None = None
) -> User:
    """Add a user. ``password`` may be None for a token-only account. With ``actor``, the
    creation is recorded in the audit trail."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidInput.one(
            "name must be 1-80 letters, digits or _ . @ -", field="name"
        )
    _check_role(role)
    if password is not None:
        _check_password(password, field="password")
    # Names that differ only in case would pass for one another on every page: refused.
    existing = session.scalar(select(User.name).where(func.lower(User.name) == name.lower()).limit(1))
    if existing == name:
        raise Conflict(f"a user named {name!r} exists already")
    if existing is not None:
        raise Conflict(f"a user named {existing!r} exists already; names that differ only in case are refused")
    user = User(
        name=name,
        role=role,
        password_hash=hash_password(password) if password is not None else None,
        created_at=now,
    )
    session.add(user)
    session.flush()
    if actor is not None:
        audit.record(session, actor, "user.created", target=name, details={"role": role}, now=now)
    return user


def _check_role(role: Any) -> None:
    if role not in ROLES:
        raise InvalidInput.one(f"role must be one of {', '.join(ROLES)}", field="role")


def _check_password(password: Any, *, field: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput.one(f"{field} must have at least {MIN_PASSWORD} characters", field=field)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput.one(f"{field} must have at most {MAX_PASSWORD} characters", field=field)


def end_sessions(user: User) -> None:
    """End every login session of ``user`` (their cookies carry the old generation number)."""
    user.session_generation = (user.session_generation or 0) + 1


def _guard_last_admin(session: Session, user: User) -> None:
    """Refuse to demote or deactivate the last active admin (nobody could manage users then).

    The admins' rows are locked on PostgreSQL (SQLite serializes writers anyway), so that two
    admins demoting each other at once cannot both pass."""
    if user.role != "admin" or not user.active:
        return
    admins = session.scalars(select(User.id).where(User.role == "admin", User.active).with_for_update()).all()
    if set(admins) <= {user.id}:
        raise Conflict(f"{user.name} is the last active admin; make another user admin first")


def change_role(session: Session, user: User, role: Any, *, actor: Actor, now: datetime) -> User:
    """Give ``user`` another role (audited); the last active admin keeps theirs."""
    _check_role(role)
    if role == user.role:
        return user
    if role != "admin":
        _guard_last_admin(session, user)
    old, user.role = user.role, role
    audit.record(session, actor, "user.role_changed", target=user.name, details={"from": old, "to": role}, now=now)
    return user


def set_active(session: Session, user: User, active: Any, *, actor: Actor, now: datetime) -> User:
    """Deactivate (sessions end, tokens are revoked) or reactivate ``user`` (audited)."""
    if not isinstance(active, bool):
        raise InvalidInput.one("active must be true or false", field="active")
    if active == user.active:
        return user
    if not active:
        _guard_last_admin(session, user)
        revoked = session.execute(delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount
        session.expire(user, ["tokens"])
        end_sessions(user)
        user.active = False
        audit.record(session, actor, "user.deactivated", target=user.name, details={"tokens_revoked": revoked}, now=now)
    else:
        user.active = True
        audit.record(session, actor, "user.reactivated", target=user.name, now=now)
    return user


def new_password() -> str:
    """A random password of 16 characters (96 bits)."""
    return secrets.token_urlsafe(12)


def reset_password(session: Session, user: User, *, actor: Actor, now: datetime) -> str:
    """Give ``user`` a new random password and return it (shown once); their sessions end."""
    password = new_password()
    user.password_hash = hash_password(password)
    end_sessions(user)
    audit.record(session, actor, "user.password_reset", target=user.name, now=now)
    return password


def change_password(session: Session, user: User, current: Any, new: Any, *, now: datetime) -> None:
    """Change one's own password; the current one is required. Every session of the user ends
    (the caller logs the current one in again)."""
    if not isinstance(current, str) or not check_password(user.password_hash, current):
        raise InvalidInput.one("the current password is not right", field="current_password")
    _check_password(new, field="new_password")
    if new == current:
        raise InvalidInput.one("the new password is the current one; choose another", field="new_password")
    user.password_hash = hash_password(new)
    end_sessions(user)
    audit.record(session, user, "user.password_changed", target=user.name, now=now)


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


def check_token_fields(name: Any, expires_in_days: Any) -> None:
    if not isinstance(name, str) or len(name) > 80:
        raise InvalidInput.one("name must be text of at most 80 characters", field="name")
    if expires_in_days is not None and (isinstance(expires_in_days, bool) or not isinstance(expires_in_days, int)
                                        or not 1 <= expires_in_days <= MAX_TOKEN_DAYS):
        raise InvalidInput.one(f"expires_in_days must be a whole number from 1 to {MAX_TOKEN_DAYS}",
                               field="expires_in_days")


def issue_token(session: Session, user: User, *, name: str = "", expires_in_days: int | None = None,
                now: datetime, actor: Actor | None = None) -> tuple[ApiToken, str]:
    """Create an API token for ``user``; return its row and its secret (only the hash is stored).
    With ``actor``, the creation is audited."""
    check_token_fields(name, expires_in_days)
    secret = new_token()
    expires_at = now + timedelta(days=expires_in_days) if expires_in_days is not None else None
    token = ApiToken(user_id=user.id, token_hash=hash_token(secret), name=name, created_at=now, expires_at=expires_at)
    session.add(token)
    session.flush()
    if actor is not None:
        audit.record(session, actor, "token.created", target=token.id, now=now,
                     details={"user": user.name, "name": name, "expires_at": iso(expires_at)})
    return token, secret


def create_token(session: Session, user: User, *, name: str = "", now: datetime) -> str:
    """Create a token that never expires and return its secret (the CLI and tests)."""
    return issue_token(session, user, name=name, now=now)[1]


def list_tokens(session: Session, user: User, *, limit: int | None = None, offset: int = 0) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)
                                .limit(limit).offset(offset)))


def get_token(session: Session, token_id: int, caller: User) -> ApiToken:
    """The caller's own token, or anyone's for an admin; else NotFound (no hint that it exists)."""
    token = session.get(ApiToken, token_id)
    if token is None or (token.user_id != caller.id and caller.role != "admin"):
        raise NotFound(f"no token {token_id} of yours")
    return token


def revoke_token(session: Session, token: ApiToken, *, actor: Actor, now: datetime) -> None:
    """Delete a token: its next request is a 401 (audited)."""
    owner = session.get(User, token.user_id)
    audit.record(session, actor, "token.revoked", target=token.id, now=now,
                 details={"user": owner.name if owner else None, "name": token.name})
    session.delete(token)
    session.flush()


# Looked up on every API request, so built once.
_TOKEN_BY_HASH = select(ApiToken, User).join(User).where(ApiToken.token_hash == bindparam("token_hash"))


def check_token(session: Session, secret: str, *, now: datetime) -> tuple[ApiToken, User] | None:
    """The token with this secret and its user, if the token is live (not revoked or expired)
    and the user active; else None."""
    row = session.execute(_TOKEN_BY_HASH, {"token_hash": hash_token(secret)}).one_or_none()
    if row is None:
        return None
    token, user = row
    if not user.active or (token.expires_at is not None and token.expires_at <= now):
        return None
    return token, user


def user_for_token(session: Session, secret: str, *, now: datetime) -> User | None:
    found = check_token(session, secret, now=now)
    return found[1] if found else None


def token_use_is_stale(token: ApiToken, *, now: datetime) -> bool:
    """Whether ``last_used_at`` is worth a write: it is kept to the hour, so that API calls do not
    each cost a write transaction."""
    return token.last_used_at is None or now - token.last_used_at >= LAST_USED_PRECISION


def note_token_use(session: Session, token_id: int, *, now: datetime) -> None:
    session.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now))


def find_user(session: Session, name: str) -> User | None:
    return session.scalar(select(User).where(User.name == name))


def get_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def list_users(session: Session, *, limit: int | None = None, offset: int = 0) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name).limit(limit).offset(offset)))


def user_by_id(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user
