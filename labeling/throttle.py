"""Login throttling shared by every worker and machine (the attempts live in the database).

Failures are counted per address and per account from an address: a guesser is stopped at their
address, and nobody can lock a user out by failing from elsewhere. A success clears that
account's count from that address. Only failures count, so the right password is refused only
while its own address or pair is over the limit.
"""

from __future__ import annotations

import ipaddress
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
    return f"address:{_network(address)}"[:400], f"account:{name}@{_network(address)}"[:400]


def _network(address: str) -> str:
    """An IPv6 client counts as its /64 (one host can hold the whole /64); IPv4 as itself."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    return str(ipaddress.ip_network(f"{ip}/64", strict=False)) if ip.version == 6 else str(ip)


def retry_after(session: Session, limits: LoginLimits, name: str, address: str, *, now: datetime) -> int | None:
    """Seconds until this name may try again from this address, or None if it may now."""
    by_address, by_pair = _keys(name, address)
    since = now - limits.window
    rows = session.execute(
        select(LoginFailure.key, func.count(), func.min(LoginFailure.at))
        .where(LoginFailure.key.in_((by_address, by_pair)), LoginFailure.at > since)
        .group_by(LoginFailure.key)
    ).all()
    waits = [max(1, int((oldest + limits.window - now).total_seconds()) + 1) for key, count, oldest in rows
             if count >= (limits.per_address if key == by_address else limits.per_account_and_address)]
    return max(waits, default=None)


def record_failure(session: Session, limits: LoginLimits, name: str, address: str, *, now: datetime) -> None:
    by_address, by_pair = _keys(name, address)
    session.execute(insert(LoginFailure), [{"key": by_address, "at": now}, {"key": by_pair, "at": now}])
    # Forget what has left the window: the table stays as small as the recent failures.
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - limits.window))


def record_success(session: Session, name: str, address: str) -> None:
    _, by_pair = _keys(name, address)
    session.execute(delete(LoginFailure).where(LoginFailure.key == by_pair))
