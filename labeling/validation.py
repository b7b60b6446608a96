"""Small checks that keep input the database cannot store from becoming a server error."""

from __future__ import annotations

from typing import Any

MAX_DB_INT = 2**63 - 1


def is_db_int(value: Any) -> bool:
    """An integer id the database can hold (not a bool, 1 to 2**63 - 1)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_DB_INT


def is_storable_text(value: str) -> bool:
    """Text that encodes as UTF-8 (JSON can carry lone surrogates; databases cannot)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in value  # PostgreSQL text cannot hold NUL



def is_storable_json(value: Any) -> bool:
    """A JSON value whose every string, keys included, is storable text."""
    stack = [value]
    while stack:  # a loop, not recursion: nesting depth is the sender's choice
        item = stack.pop()
        if isinstance(item, str):
            if not is_storable_text(item):
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
