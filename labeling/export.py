"""Streamed exports of a label set: gold rows or every label event, in JSONL, CSV or Parquet.

Rows are read in keyset-paginated chunks of examples, so memory stays flat at any size.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from typing import Any, Iterator

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from labeling.errors import InvalidInput, Problem
from labeling.examples import features_from_bytes
from labeling.models import Example, Label, Project, Snapshot, User
from labeling.db import iso
from labeling import tasks
from labeling.snapshots import contents_as_of, current_labels_query, flag_statuses, golds_as_of

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
ANNOTATIONS = ("gold", "all")
GOLD_COLUMNS = ("external_id", "text", "image", "features", "meta", "label", "n_annotations", "agreement", "flag_status")
ALL_COLUMNS = ("external_id", "label_id", "label", "annotator", "created_at", "replaces", "source", "suggestion_mode",
               "suggested")
# The sources of label events an annotator gave on the labeling page (labeling/labels.py): null
# suggestion mode there means suggestions were off; other events (imports, reviews, undos) were
# served to nobody and have none.
SERVED_SOURCES = ("annotator", "mistake_check")
# A multi-label project's exports carry the list ``labels`` where others carry ``label``.
MULTI_LABEL_COLUMNS = {columns: tuple("labels" if c == "label" else c for c in columns)
                       for columns in (GOLD_COLUMNS, ALL_COLUMNS)}
CHUNK = 2000
# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection"); a
# leading apostrophe makes it text. Always done for the columns people of the service write
# (user names, sources); for imported data, where it would change the data, only when asked.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PEOPLE_COLUMNS = frozenset({"annotator", "source"})
FLAG_PRIORITY = ("corrected", "confirmed", "open", "dismissed", "superseded", "withdrawn")


def check_export_args(fmt: str, annotations: str) -> None:
    problems = []
    if fmt not in EXPORT_FORMATS:
        problems.append(("format", f"must be one of {', '.join(EXPORT_FORMATS)}"))
    if annotations not in ANNOTATIONS:
        problems.append(("annotations", f"must be one of {', '.join(ANNOTATIONS)}"))
    if problems:
        raise InvalidInput("invalid export options", [Problem(m, field=f) for f, m in problems])


def _example_chunks(session: Session, project_id: int, only_labeled: bool,
                    snapshot: Snapshot | None = None) -> Iterator[list[Any]]:
    max_label_id = snapshot.max_label_id if snapshot is not None else None
    last_id = 0
    while True:
        # Columns, not ORM objects: building an object per row was most of an export's time.
        query = select(Example.id, Example.external_id, Example.data, Example.features, Example.gold_label,
                       Example.gold_n).where(
            Example.project_id == project_id, Example.id > last_id)
        if snapshot is not None and snapshot.max_example_id is not None:
            query = query.where(Example.id <= snapshot.max_example_id)
        if only_labeled:
            # A correlated EXISTS is one index probe per example (ix_labels_example_annotator).
            labeled = select(Label.id).where(Label.example_id == Example.id, Label.value.is_not(None))
            if max_label_id is not None:
                labeled = labeled.where(Label.id <= max_label_id)
            query = query.where(labeled.exists())
        # Core execution: the ORM's per-row result machinery cost more than SQLite did.
        chunk = session.connection().execute(query.order_by(Example.id).limit(CHUNK)).all()
        if not chunk:
            return
        yield chunk
        last_id = chunk[-1].id


def iter_gold(session: Session, project: Project, *, snapshot: Snapshot | None = None,
              include_unlabeled: bool = False) -> Iterator[dict[str, Any]]:
    """One row per example with at least one current label: its gold label (the retrain's
    quality-weighted consensus for several annotators, else the majority) and the share of its
    labels that agree with it. With ``snapshot``, every column as that snapshot saw it."""
    max_label_id = snapshot.max_label_id if snapshot is not None else None
    field = tasks.annotation_field(project)
    for chunk in _example_chunks(session, project.id, only_labeled=not include_unlabeled, snapshot=snapshot):
        ids = [e.id for e in chunk]
        by_example: dict[int, list[str]] = defaultdict(list)
        for example_id, value in session.connection().execute(
                current_labels_query(project.id, max_label_id, example_ids=ids)
                .with_only_columns(Label.example_id, Label.value).order_by(Label.id)):
            by_example[example_id].append(value)
        flags = flag_statuses(session, ids, FLAG_PRIORITY, snapshot)
        contents = contents_as_of(session, snapshot, ids) if snapshot is not None else {}
        if snapshot is None or snapshot.max_example_id is None:
            # The live consensus; also for a snapshot taken before migration 0010 kept its own.
            golds = {e.id: (e.gold_label, e.gold_n) for e in chunk if e.gold_label is not None}
        else:
            golds = golds_as_of(session, snapshot, ids)
        for example in chunk:
            values = by_example.get(example.id, [])
            if not values and not include_unlabeled:
                continue
            label, agreement = gold_of(project, values, golds.get(example.id))
            data, features = contents.get(example.id, (example.data, example.features))
            yield {
                "external_id": example.external_id,
                "text": data.get("text"),
                "image": data.get("image"),
                "features": features_from_bytes(features),
                "meta": data.get("meta"),
                field: tasks.decode(project, label),
                "n_annotations": len(values),
                "agreement": agreement,
                "flag_status": flags.get(example.id),
            }


def gold_of(project: Project, values: list[str], consensus: tuple[str, int] | None) -> tuple[str | None, float | None]:
    """The gold label of an example's current labels (oldest first) and the share agreeing with it:
    the retrain's ``consensus`` (label, over how many labels) while those labels are current,
    else the majority (labeling/tasks.py)."""
    if not values:
        return None, None
    if len(values) == 1:  # the common case
        return values[0], 1.0
    label, top = tasks.gold(project, values)
    if consensus is not None and consensus[0] in values and consensus[1] == len(values):
        label, top = consensus[0], values.count(consensus[0])
    return label, round(top / len(values), 4)


def iter_events(session: Session, project: Project, *, snapshot: Snapshot | None = None) -> Iterator[dict[str, Any]]:
    """One row per label event (undo events have a null label), oldest first, with the suggestion
    it was given under: ``suggestion_mode`` (``off``, ``blind``, ``unscored``, ``show`` or
    ``preselect``; null for events no annotator was served, such as imports, reviews and undos)
    and ``suggested`` (the label, or for a multi-label project the list, that was shown)."""
    max_label_id = snapshot.max_label_id if snapshot is not None else None
    field = tasks.annotation_field(project)
    last_id = 0
    while True:
        query = (
            select(Label.id, Label.value, Label.created_at, Label.replaces_id, Label.source, Example.external_id, User.name,
                   Label.suggestion_mode, Label.suggested)
            .join(Example, Example.id == Label.example_id)
            .outerjoin(User, User.id == Label.annotator_id)
            .where(Label.project_id == project.id, Label.id > last_id)
        )
        if max_label_id is not None:
            query = query.where(Label.id <= max_label_id)
        rows = session.execute(query.order_by(Label.id).limit(CHUNK)).all()
        if not rows:
            return
        for label_id, value, created_at, replaces, source, external_id, annotator, mode, suggested in rows:
            yield {
                "external_id": external_id,
                "label_id": label_id,
                field: tasks.decode(project, value),
                "annotator": annotator,
                "created_at": iso(created_at),
                "replaces": replaces,
                "source": source,
                "suggestion_mode": mode or ("off" if source in SERVED_SOURCES else None),
                "suggested": tasks.decode(project, suggested),
            }
        last_id = rows[-1][0]


def rows_and_columns(session: Session, project: Project, *, annotations: str, snapshot: Snapshot | None,
                     include_unlabeled: bool = False) -> tuple[Iterator[dict[str, Any]], tuple[str, ...]]:
    """The rows of an export (``gold`` or ``all`` annotations) and their columns: the current
    labels, or those of ``snapshot``."""
    gold = annotations == "gold"
    columns = GOLD_COLUMNS if gold else ALL_COLUMNS
    if tasks.is_multi_label(project):
        columns = MULTI_LABEL_COLUMNS[columns]
    if gold:
        return iter_gold(session, project, snapshot=snapshot, include_unlabeled=include_unlabeled), columns
    return iter_events(session, project, snapshot=snapshot), columns


def encode(rows: Iterator[dict[str, Any]], fmt: str, columns: tuple[str, ...], *,
           escape_formulas: bool = False) -> Iterator[bytes]:
    """Turn rows into chunks of file bytes; ``escape_formulas``: defuse formulas in every CSV cell."""
    if fmt == "jsonl":
        return _jsonl(rows)
    if fmt == "csv":
        escaped = frozenset(columns) if escape_formulas else PEOPLE_COLUMNS
        return _csv(rows, columns, escaped)
    return _parquet(rows, columns)


def _jsonl(rows: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    buffer: list[bytes] = []
    for row in rows:
        try:
            buffer.append(orjson.dumps(row))  # UTF-8, like json.dumps(ensure_ascii=False), ~5x faster
        except orjson.JSONEncodeError:  # integers beyond 64 bits in a meta field
            buffer.append(json.dumps(row, ensure_ascii=False).encode())
        if len(buffer) >= 1000:
            yield b"\n".join(buffer) + b"\n"
            buffer.clear()
    if buffer:
        yield b"\n".join(buffer) + b"\n"


def _csv(rows: Iterator[dict[str, Any]], columns: tuple[str, ...], escaped: frozenset[str]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    for i, row in enumerate(rows, start=1):
        if "labels" in row:  # a multi-label project's sets: joined, not JSON
            row = {**row, **{c: tasks.to_cell(row[c]) for c in ("labels", "suggested") if row.get(c) is not None}}
        writer.writerow([_csv_cell(row[c], c in escaped) for c in columns])
        if i % 1000 == 0:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode()


def _csv_cell(value: Any, escape: bool) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if value is None:
        return ""
    if escape and isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _arrow_schema(columns: tuple[str, ...]):
    import pyarrow as pa

    types = {
        "features": pa.list_(pa.float32()), "n_annotations": pa.int64(), "agreement": pa.float64(),
        "label_id": pa.int64(), "replaces": pa.int64(), "labels": pa.list_(pa.string()),
    }
    if "labels" in columns:  # a multi-label project: the suggestion shown is a set too
        types["suggested"] = pa.list_(pa.string())
    return pa.schema([(c, types.get(c, pa.string())) for c in columns])


def _parquet(rows: Iterator[dict[str, Any]], columns: tuple[str, ...]) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema(columns)
    sink = _Spool()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema)
    batch: list[dict[str, Any]] = []

    def write(items: list[dict[str, Any]]) -> bytes:
        data = {c: [r[c] for r in items] for c in columns}
        if "meta" in data:
            data["meta"] = [None if m is None else json.dumps(m) for m in data["meta"]]
        writer.write_table(pa.table(data, schema=schema))
        return sink.take()

    for row in rows:
        batch.append(row)
        if len(batch) >= 10000:
            yield write(batch)
            batch.clear()
    if batch:
        yield write(batch)
    writer.close()
    yield sink.take()


class _Spool:
    """A write-only file that hands over what was written so far, keeping its offset right."""

    closed = False

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: Any) -> int:
        data = bytes(data)
        self._parts.append(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        value = b"".join(self._parts)
        self._parts.clear()
        return value
