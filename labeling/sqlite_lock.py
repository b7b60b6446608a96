"""SQLite's write lock as lock files (``flock``), for labeling/db.py: the lock every writer queues
on (``<db>.lock``), who waits for it (``<db>.lock.wait``), and whether a bulk writer checkpoints
the log itself (``<db>.lock.bulk``). ``flock`` locks are per open file, so they exclude threads of
one process as they exclude processes, and the kernel drops them with the process."""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from typing import Iterator

WAITING = ".wait"  # shared-locked by each writer while it waits for the write lock
BULK = ".bulk"  # shared-locked by a bulk writer for as long as it checkpoints the log itself


def take(lock_path: str) -> int:
    """The write lock, once free (the open file, to ``release``). A writer that finds it taken
    says so meanwhile, with a shared lock of ``<lock>.wait``."""
    fd = _open(lock_path)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        waiting = _open(lock_path + WAITING)
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
def held_shared(path: str) -> Iterator[None]:
    fd = _open(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _open(path: str) -> int:
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
