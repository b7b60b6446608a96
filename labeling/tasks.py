"""What an annotation is in each kind of project: one label (``single_label``) or a set of labels,
possibly empty (``multi_label``).

A label event stores its annotation in one text column either way: the label's name, or for a
set the JSON array of its names in the project's label order (``[]``: none of these), so equal
sets are equal strings and every path that compares, counts or replaces label rows works
unchanged. This module is the one place that turns what callers send into that string and back.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Sequence

from labeling.errors import InvalidInput
from labeling.models import Project

TASKS = ("single_label", "multi_label")
# A CSV cell holds a set of labels joined by this (a label name containing it cannot be in a CSV
# of a multi-label project: JSONL and Parquet carry real lists).
CSV_SEPARATOR = "|"


def check_label_set(task: str, names: list[str]) -> None:
    """Two labels or more: a single-label project with one label has nothing to choose (and no
    model learns one class); for a multi-label one, one label is a yes/no single-label project.
    A multi-label project's names must fit a CSV cell: no ``|``, none that reads ``[]``."""
    if task != "multi_label":
        if len(names) < 2:
            raise InvalidInput.one("a single-label project needs at least two labels to choose from "
                                   "(one tag to mark: labels yes and no)", field="labels")
        return
    if len(names) < 2:
        raise InvalidInput.one("a multi-label project needs at least two labels (one label: make it a "
                               "single-label project with yes and no)", field="labels")
    bad = next((n for n in names if CSV_SEPARATOR in n or n.strip() == "[]"), None)
    if bad is not None:
        raise InvalidInput.one(f"{bad[:100]!r}: a multi-label project's label cannot contain '|' or be '[]' "
                               "(CSV files join a set's labels with '|')", field="labels")


def is_multi_label(project: Project) -> bool:
    return project.task_kind == "multi_label"


def annotation_field(project: Project) -> str:
    """The field that carries an annotation in requests, rows and answers: ``label`` or ``labels``."""
    return "labels" if is_multi_label(project) else "label"


def _names(project: Project) -> list[str]:
    return [label["name"] for label in project.labels]


def encode(project: Project, value: Any, *, field: str | None = None) -> str:
    """The stored form of an annotation: a label name, or a list of them for a multi-label
    project (any order, no repeats). Raises InvalidInput naming ``field``."""
    names = _names(project)
    field = field or annotation_field(project)
    if not is_multi_label(project):
        if not isinstance(value, str) or value not in names:
            raise InvalidInput.one(f"must be one of {', '.join(names)}", field=field)
        return value
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput.one("must be a list of the project's labels (an empty list: none of them)", field=field)
    unknown = [v for v in value if v not in names]
    if unknown:
        raise InvalidInput.one(f"{unknown[0][:100]!r} is not one of {', '.join(names)}", field=field)
    if len(set(value)) != len(value):
        raise InvalidInput.one("names a label twice", field=field)
    chosen = set(value)
    return json.dumps([n for n in names if n in chosen], ensure_ascii=False)


def decode(project: Project, stored: str | None) -> Any:
    """An annotation as the API shows it: the label name, or the list of names."""
    if stored is None or not is_multi_label(project):
        return stored
    return json.loads(stored)


def annotation_in(project: Project, body: dict[str, Any]) -> Any:
    """The annotation a request body sends (``label``, or ``labels`` for a multi-label project),
    not yet checked. Sending the other field is a 422 naming it."""
    field = annotation_field(project)
    wrong = "label" if field == "labels" else "labels"
    if wrong in body:
        kind = "a multi-label" if field == "labels" else "a single-label"
        raise InvalidInput.one(f"{kind} project takes '{field}', not '{wrong}'", field=wrong)
    return body.get(field)


def to_cell(names: list[str]) -> str:
    """A set of labels in a CSV cell (the inverse of ``formats.labels_of_cell``)."""
    return CSV_SEPARATOR.join(names) if names else "[]"


def gold(project: Project, values: Sequence[str]) -> tuple[str, int]:
    """The gold of an example's current labels (oldest first) and how many agree with it:
    the most frequent label (the oldest among ties); for sets, each label chosen by more than
    half the annotators, and the sets equal to that."""
    if not is_multi_label(project):
        return Counter(values).most_common(1)[0]
    sets = [json.loads(v) for v in values]
    votes = Counter(name for chosen in sets for name in chosen)
    majority = encode(project, [name for name, n in votes.items() if 2 * n > len(sets)])
    return majority, sum(v == majority for v in values)
