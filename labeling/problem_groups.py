"""The same problem on many lines, told once: "line 3, 7, 9 and 412 more: field 'label': ...".

A file with a wrong label column fails every one of its million lines the same way; listing them
hides the one thing to fix. Groups are bounded, so a file whose every line fails differently
still costs little memory.
"""

from __future__ import annotations

from typing import Any

from labeling.errors import Problem

MAX_GROUPS = 100
LINES_SHOWN = 3


class ProblemGroups:
    """Problems grouped by field and message, in the order each was first seen."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str | None, str], dict[str, Any]] = {}
        self.ungrouped = 0  # problems past MAX_GROUPS different ones

    def add(self, problem: Problem) -> None:
        key = (problem.field, problem.message)
        group = self._groups.get(key)
        if group is None:
            if len(self._groups) >= MAX_GROUPS:
                self.ungrouped += 1
                return
            group = self._groups[key] = {"field": problem.field, "message": problem.message, "lines": [], "count": 0}
        group["count"] += 1
        if problem.line is not None and len(group["lines"]) < LINES_SHOWN:
            group["lines"].append(problem.line)

    def as_list(self) -> list[dict[str, Any]]:
        """``[{"field", "message", "lines" (the first few), "count"}]``, the most frequent first."""
        return sorted(self._groups.values(), key=lambda g: -g["count"])


def describe(group: dict[str, Any]) -> str:
    """One sentence for a group: ``line 3, 7, 9 and 412 more: field 'label': 'x' is not ...``."""
    lines = [str(n) for n in group.get("lines") or []]
    more = group["count"] - len(lines)
    where = ""
    if lines:
        where = "line " + ", ".join(lines)
        where += f" and {more} more" if more > 0 else ""
    elif group["count"] > 1:
        where = f"{group['count']} times"
    parts = [p for p in (where, f"field '{group['field']}'" if group.get("field") else "") if p]
    return ": ".join([*parts, group["message"]])
