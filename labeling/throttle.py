"""Login throttling shared by every worker and machine (the attempts live in the database).

Failures are counted per address and per account from an address: a guesser is stopped at their
address, and nobody can lock a user out by failing from elsewhere. A success clears that
account's count from that address. Only failures count, so the right password is refused only
while its own address or pair is over the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from labeling.models import LoginFailure


@dataclass(frozen=True)
class LoginLimits:
    per_address: int
    per_account_and_address: int
    window: timedelta


def _keys(name: str, address: str) -> tuple[str, str]:
    return f"address:{address}"[:400], f"account:{name}@{address}"[:400]


def retry_after(session: Session, limits: LoginLimits, name: str, address: str, *, now: datetime) -> int | None:
    """Seconds until this name may try again from this address, or None if it may now."""
    by_address, by_pair = _keys(name, address)
    since = now - limits.window
    rows = session.execute(
        select(LoginFailure.key, func.count(), func.min(LoginFailure.at))
        .where(LoginFailure.key.in_((by_address, by_pair)), LoginFailure.at > since)
        .group_by(LoginFailure.key)
    ).all()
    for key, count, oldest in rows:
        cap = limits.per_address if key == by_address else limits.per_account_and_address
        if count >= cap:
            return max(1, int((oldest + limits.window - now).total_seconds()) + 1)
    return None


def record_failure(session: Session, limits: LoginLimits, name: str, address: str, *, now: datetime) -> None:
    by_address, by_pair = _keys(name, address)
    session.execute(insert(LoginFailure), [{"key": by_address, "at": now}, {"key": by_pair, "at": now}])
    # Forget what has left the window, for these keys: the table stays as small as the attempts.
    session.execute(delete(LoginFailure).where(LoginFailure.key.in_((by_address, by_pair)),
                                               LoginFailure.at <= now - limits.window))


def record_success(session: Session, name: str, address: str) -> None:
    _, by_pair = _keys(name, address)
    session.execute(delete(LoginFailure).where(LoginFailure.key == by_pair))
