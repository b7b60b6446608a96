"""A job row's heartbeat: kept fresh by a thread while the job works, so that no other process
takes the job over; a row whose heartbeat stops is taken to be dead (``labeling.runs``,
``labeling.imports``)."""

from __future__ import annotations

import logging
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Callable, Iterator

from sqlalchemy import update
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 30.0
STALE_BEATS = 4  # a job whose heartbeat is this many beats old is taken to be dead


def stale_after(heartbeat_seconds: float) -> timedelta:
    return timedelta(seconds=heartbeat_seconds * STALE_BEATS)


def beat_once(session: Session, model: Any, row_id: int, now: datetime) -> None:
    session.execute(update(model).where(model.id == row_id).values(heartbeat_at=now))


@contextmanager
def beating(session_factory: Callable[[], Session], model: Any, row_id: int, *, clock: Callable[[], datetime],
            seconds: float) -> Iterator[None]:
    """Beat every ``seconds`` in a thread for as long as the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(seconds):
            try:
                with session_factory() as session:
                    beat_once(session, model, row_id, clock())
                    session.commit()
            except Exception:  # a missed beat is harmless; the next one retries
                log.warning("heartbeat of %s %s failed", model.__tablename__, row_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{model.__tablename__}-{row_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
