"""Small checks that keep input the database cannot store from becoming a server error."""

from __future__ import annotations

from typing import Any

from labeling.errors import Problem

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


def unit_interval(raw: Any, field: str, problems: list[Problem]) -> float | None:
    """A number from 0 to 1 given as text (a query string's filter): None when absent or empty;
    anything else that is not such a number (NaN included) is added to ``problems`` under
    ``field`` and read as None."""
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = -1.0
    if not 0.0 <= value <= 1.0:
        problems.append(Problem("must be a number from 0 to 1", field=field))
        return None
    return value
