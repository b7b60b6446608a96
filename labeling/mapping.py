"""A file's columns mapped onto the import fields: the guess the import page starts from, the
check it runs before an import starts, and what becomes of the columns no field takes.

A mapping (``rename``) is ``{column: field}``; a field of ``""`` means "no field" (the import page
sends it for a column left unmapped, so a column that happens to be called ``text`` can be kept
out of ``text``). Columns that end up as no field go into ``meta`` under their own name, are
dropped, or (``unknown=None``, the API's behaviour) stay as they are for validation to reject.
"""

from __future__ import annotations

import re
from typing import Any

from labeling.errors import Problem

ROW_FIELDS = ("external_id", "text", "image", "features", "meta", "label")
# A column may go to either annotation field; the project's task decides which one its rows take
# (a multi-label project's ``labels``: labeling/tasks.py), and validation names the other.
KNOWN_FIELDS = ROW_FIELDS + ("labels",)
# Columns a gold export adds; accepted and ignored, so an export imports straight back.
EXPORT_ONLY_FIELDS = ("n_annotations", "agreement", "flag_status")
UNKNOWN_COLUMNS = ("meta", "drop")  # what the import page may do with a column no field takes
CONTENT_FIELDS = ("text", "image", "features")  # an example needs one of these
# Usual names of each field, most telling first; compared without case, spaces, "-" or "_".
USUAL_NAMES = {
    "external_id": ("externalid", "id", "uid", "uuid", "key", "docid", "documentid", "exampleid", "itemid",
                    "rowid", "recordid"),
    "text": ("text", "review", "reviewtext", "sentence", "content", "body", "comment", "message", "document",
             "tweet", "utterance", "passage", "description", "question", "title"),
    "image": ("image", "imageurl", "img", "picture", "photo", "imagepath"),
    "features": ("features", "vector", "embedding", "embeddings"),
    "label": ("label", "sentiment", "category", "class", "target", "tag", "intent", "topic", "classname",
              "goldlabel", "labelname", "y"),
    "meta": ("meta", "metadata"),
    "labels": ("labels", "tags", "categories", "emotions", "topics", "labelset"),
}


def _plain(column: str) -> str:
    return re.sub(r"[\s_\-]+", "", column).lower()


def guess_mapping(columns: list[str]) -> dict[str, str]:
    """``{column: field or ""}`` for the columns of a file: each field goes to the column with its
    most telling usual name (``id`` loses ``external_id`` to a column called ``external_id``)."""
    guess = {column: "" for column in columns}
    plain = {column: _plain(column) for column in columns}
    for field, names in USUAL_NAMES.items():
        for name in names:
            match = next((c for c in columns if plain[c] == name and not guess[c]), None)
            if match is not None:
                guess[match] = field
                break
    return guess


def check_mapping(rename: dict[str, str], unknown: str) -> list[Problem]:
    """The problems of a mapping chosen on the import page, each naming the field it is about."""
    problems = []
    if unknown not in UNKNOWN_COLUMNS:
        problems.append(Problem(f"must be one of {', '.join(UNKNOWN_COLUMNS)}", field="unknown_columns"))
    for field, value in rename.items():
        if value and value not in KNOWN_FIELDS:
            problems.append(Problem(f"map the column to one of {', '.join(KNOWN_FIELDS)}", field=field))
    chosen = [value for value in rename.values() if value]
    if chosen.count("external_id") > 1:  # none: each example's id is made from its content
        problems.append(Problem("map at most one column to external_id (each example's own id)", field="external_id"))
    if not any(field in chosen for field in CONTENT_FIELDS):
        problems.append(Problem("map a column to text (or to image or features): no column holds the examples",
                                field="text"))
    problems += [Problem(f"{chosen.count(field)} columns are mapped to it; choose one", field=field)
                 for field in KNOWN_FIELDS if field != "external_id" and chosen.count(field) > 1]
    return problems


def map_columns(record: dict[str, Any], rename: dict[str, str], unknown: str | None) -> dict[str, Any]:
    """``record`` with its columns renamed to fields and the other columns put into ``meta``,
    dropped, or left for validation (``unknown`` ``"meta"``, ``"drop"`` or None)."""
    mapped: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for column, value in record.items():
        field = rename.get(column, column)
        if field in KNOWN_FIELDS or field in EXPORT_ONLY_FIELDS or (unknown is None and field):
            mapped[field] = value
        else:
            extra[column] = value
    if extra and unknown == "meta":
        meta = mapped.get("meta")
        if meta is None:
            mapped["meta"] = extra
        elif isinstance(meta, dict):  # a meta column of the file wins over a column of the same name
            mapped["meta"] = {**extra, **meta}
    return mapped
