"""SQLite's write lock as lock files (``flock``), for labeling/db.py and labeling/bulk_writer.py:
the lock every writer queues on (``<db>.lock``), who waits for it (``<db>.lock.wait``), whether a
bulk writer checkpoints the log itself (``<db>.lock.bulk``), and when a writer last had to wait
(``<db>.lock.contended``, its time). ``flock`` locks are per open file, so they exclude threads of
one process as they exclude processes, and the kernel drops them with the process."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from contextlib import contextmanager
from typing import Iterator

WAITING = ".wait"  # shared-locked by each writer while it waits for the write lock
BULK = ".bulk"  # shared-locked by a bulk writer for as long as it checkpoints the log itself
CONTENDED = ".contended"  # touched by a writer that had to wait: the bulk writer then syncs its log
_bulk_writer_here = 0  # how many bulk writers this process runs: its own waits mark no contention
_bulk_count_lock = threading.Lock()  # with JOBS=inline, imports run in request threads


def take(lock_path: str) -> int:
    """The write lock, once free (the open file, to ``release``). A writer that finds it taken
    says so meanwhile, with a shared lock of ``<lock>.wait``."""
    fd = _open(lock_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            if not _bulk_writer_here:
                _mark(lock_path + CONTENDED)
            waiting = _open(lock_path + WAITING)
        except BaseException:
            os.close(fd)
            raise
        try:
            fcntl.flock(waiting, fcntl.LOCK_SH)
            fcntl.flock(fd, fcntl.LOCK_EX)  # releases the GIL while it waits
        except BaseException:
            os.close(fd)
            raise
        finally:
            os.close(waiting)  # closing a file releases its lock
    return fd


def release(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def is_held(path: str) -> bool:
    """Whether another open file holds a lock of ``path`` (asked without waiting)."""
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextmanager
def bulk_writer(lock_path: str) -> Iterator[None]:
    """This process writes in bulk meanwhile: ``<lock>.bulk`` is shared-locked (the other
    connections leave the checkpoint to it), and its own writers' waits (its heartbeat's, say) are
    not taken for annotators meeting its lock."""
    global _bulk_writer_here
    fd = _open(lock_path + BULK)
    with _bulk_count_lock:
        _bulk_writer_here += 1
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        with _bulk_count_lock:
            _bulk_writer_here -= 1
        os.close(fd)


def contended_within(lock_path: str, seconds: float) -> bool:
    """Whether a writer outside a bulk writer's process has waited for the lock in the last ``seconds``."""
    try:
        return os.stat(lock_path + CONTENDED).st_mtime >= time.time() - seconds
    except FileNotFoundError:
        return False


def _mark(path: str) -> None:
    """Touch ``path``: a hint only, so a mark that cannot be written (a full disk, a file another
    user made) never fails the write that waits."""
    try:
        fd = _open(path)
    except OSError:
        return
    try:
        os.utime(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
