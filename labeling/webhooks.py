"""Outgoing webhooks: an outbox written in the event's transaction, delivered after commit.

Signed per Standard Webhooks: headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature`` = ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, keyed with the
base64-decoded part of the project's ``whsec_`` secret. Failed deliveries are retried with
exponential backoff (capped); every attempt is logged in ``webhook_attempts``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from labeling import outbound
from labeling.errors import InvalidInput, NotFound
from labeling.models import Project, WebhookAttempt, WebhookDelivery
from labeling.projects import config
from labeling.db import iso, reading

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
BACKOFF_FIRST = 5.0  # seconds; doubles each attempt
BACKOFF_CAP = 3600.0
TIMEOUT = 10.0
CLAIM_SECONDS = 60  # a claimed delivery is not picked again for this long


class Links(Protocol):
    """Where an outside system fetches what an event announces. The web layer owns the URLs and
    passes its links in; without them an event names ids only."""

    def export(self, project_id: int, snapshot: int) -> str: ...

    def models(self, project_id: int) -> str: ...


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts: 5, 10, 20, ... capped at an hour."""
    return min(BACKOFF_FIRST * 2 ** max(0, attempts - 1), BACKOFF_CAP)


def enqueue_event(session: Session, project: Project, event: str, data: dict[str, Any], *, now: datetime) -> WebhookDelivery | None:
    """Write a delivery to the outbox, in the caller's transaction; None if no URL is set."""
    url = config(project).webhook_url
    if not url:
        return None
    body = json.dumps({"type": event, "timestamp": iso(now), "data": data}, separators=(",", ":"))
    delivery = WebhookDelivery(
        project_id=project.id, msg_id=f"msg_{uuid.uuid4().hex}", event=event, url=url, body=body,
        status="pending", attempts=0, next_attempt_at=now, created_at=now,
    )
    session.add(delivery)
    session.flush()
    return delivery


def _claim(session: Session, delivery_id: int, now: datetime) -> bool:
    """Take a due delivery for this process (compare-and-set on its next attempt time)."""
    return bool(session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
               WebhookDelivery.next_attempt_at <= now)
        .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)
    ).rowcount)


def post(url: str, headers: dict[str, str], body: bytes) -> int:
    """POST and return the status code; raises OSError when no status came back."""
    return outbound.post(url, headers, body, timeout=TIMEOUT)


def deliver_due(session_factory: Callable[[], Session], *, clock: Callable[[], datetime],
                send: Callable[[str, dict[str, str], bytes], int] = post, limit: int = 100) -> int:
    """Send every delivery that is due; returns how many were attempted. Owns its transactions:
    claim (commit), send with no transaction open, record the attempt (commit)."""
    with session_factory() as session, reading(session):  # every few seconds: no write lock for a look
        due = list(session.scalars(
            select(WebhookDelivery.id).where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= clock())
            .order_by(WebhookDelivery.next_attempt_at).limit(limit)
        ))
    attempted = 0
    for delivery_id in due:
        with session_factory() as session:
            if not _claim(session, delivery_id, clock()):
                session.rollback()
                continue
            delivery = session.get(WebhookDelivery, delivery_id)
            secret = session.scalar(select(Project.settings).where(Project.id == delivery.project_id)).get("webhook_secret", "")
            session.commit()
            timestamp = int(time.time())
            headers = {"content-type": "application/json", "user-agent": "hitl-labeling-webhooks",
                       "webhook-id": delivery.msg_id, "webhook-timestamp": str(timestamp),
                       "webhook-signature": sign(secret, delivery.msg_id, timestamp, delivery.body)}
            started = time.perf_counter()
            status, error = None, None
            try:
                status = send(delivery.url, headers, delivery.body.encode())
            except OSError as exc:  # no answer (outbound says what, never which ports are open): retried
                error = str(exc)[:500]
            duration_ms = int((time.perf_counter() - started) * 1000)
            now = clock()
            ok = status is not None and 200 <= status < 300
            attempts = delivery.attempts + 1
            session.add(WebhookAttempt(delivery_id=delivery.id, attempted_at=now, status_code=status, error=error,
                                       duration_ms=duration_ms))
            values: dict[str, Any] = {"attempts": attempts, "last_status_code": status,
                                      "last_error": error or (None if ok else _status_error(status))}
            if ok:
                values.update(status="delivered", delivered_at=now, next_attempt_at=None)
            elif attempts >= MAX_ATTEMPTS:
                values.update(status="failed", next_attempt_at=None)
            else:
                values["next_attempt_at"] = now + timedelta(seconds=backoff(attempts))
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values))
            session.commit()
            log.info("webhook %s %s attempt %s -> %s", delivery.event, delivery.msg_id, attempts, status or error)
            attempted += 1
    return attempted


def _status_error(status: int | None) -> str:
    if status is not None and 300 <= status < 400:
        return f"HTTP {status}: a redirect, which is not followed; set the final URL"
    return f"HTTP {status}"


@dataclass(frozen=True)
class WebhookTestResult:
    """What a test event's one attempt gave: the receiver's status code, or why none came back."""

    url: str
    msg_id: str
    status_code: int | None
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def send_test_event(project: Project, *, now: datetime,
                    send: Callable[[str, dict[str, str], bytes], int] = post) -> WebhookTestResult:
    """Send one signed ``webhook.test`` event to the project's webhook URL now, with the same
    signing and address rules as every delivery; no outbox row, no retry. Call it with no
    transaction open: it waits for the receiver (up to ``TIMEOUT`` seconds).

    Raises
    ------
    InvalidInput
        The project has no webhook URL (field ``webhook_url``).
    """
    settings = config(project)
    if not settings.webhook_url:
        raise InvalidInput.one("set a webhook URL first", field="webhook_url")
    msg_id = f"msg_{uuid.uuid4().hex}"
    body = json.dumps({"type": "webhook.test", "timestamp": iso(now), "data": {
        "project_id": project.id, "project": project.name,
        "message": "a test event; nothing happened in the project"}}, separators=(",", ":"))
    timestamp = int(now.timestamp())
    headers = {"content-type": "application/json", "user-agent": "hitl-labeling-webhooks", "webhook-id": msg_id,
               "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(settings.webhook_secret, msg_id, timestamp, body)}
    try:
        status = send(settings.webhook_url, headers, body.encode())
    except OSError as exc:  # outbound's message: safe to show, the same for every network failure
        return WebhookTestResult(settings.webhook_url, msg_id, None, str(exc)[:500])
    return WebhookTestResult(settings.webhook_url, msg_id, status, None if 200 <= status < 300 else _status_error(status))


def redeliver(session: Session, delivery_id: int, *, now: datetime) -> WebhookDelivery:
    """Send a delivery again (same id and body, a new signature), whatever its status."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no webhook delivery with id {delivery_id}")
    delivery.status = "pending"
    delivery.next_attempt_at = now
    session.flush()
    return delivery


def list_deliveries(session: Session, project_id: int, *, limit: int = 100, offset: int = 0,
                    status: str | None = None) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.project_id == project_id)
    if status:
        query = query.where(WebhookDelivery.status == status)
    return list(session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(limit).offset(offset)))


