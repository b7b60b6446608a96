"""Importing examples: validated row by row, all or nothing, streamed in chunks."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator
from urllib.parse import urlparse

import numpy as np
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from labeling import tasks
from labeling.errors import InvalidInput, NotFound, Problem
from labeling.formats import RawRow
from labeling.mapping import EXPORT_ONLY_FIELDS, ROW_FIELDS
from labeling.problem_groups import ProblemGroups
from labeling.models import Example, ExampleEmbedding, Label, Project
from labeling.projects import check_writable, config, label_names, queue_seed
from labeling.validation import is_storable_json, is_storable_text
from labeling.snapshots import keep_revisions

# A multi-label project's rows carry a list ``labels`` where others carry ``label``.
MULTI_LABEL_ROW_FIELDS = tuple("labels" if f == "label" else f for f in ROW_FIELDS)
# An import names itself on its labels (source "import:<name>"); plain so exports and stats stay clean.
IMPORT_SOURCE = re.compile(r"[A-Za-z0-9._-]{1,60}")
MAX_TEXT = 1_000_000  # characters
MAX_IMAGE = 5_000_000  # characters of a URL or data: URI
MAX_FEATURES = 100_000
CHUNK = 2000
FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class ImportResult:
    imported: int
    duplicates: int
    labels: int
    updated: int = 0  # duplicates whose content was replaced (``update_duplicates``)


def json_rows(examples: Any) -> Iterator[RawRow]:
    """Rows of a JSON body ``{"examples": [...]}``; ``line`` is the 1-based position."""
    if not isinstance(examples, list):
        yield RawRow(1, None, Problem("examples must be a list", field="examples"))
        return
    if not examples:
        yield RawRow(1, None, Problem("examples is empty", field="examples"))
        return
    for i, item in enumerate(examples, start=1):
        if isinstance(item, dict):
            yield RawRow(i, item)
        else:
            yield RawRow(i, None, Problem("each example must be an object", line=i))


def features_to_bytes(values: list[float]) -> bytes:
    return np.asarray(values, dtype=np.float32).tobytes()


def _data_of(record: dict[str, Any], bad: Callable[[str, str], None]) -> dict[str, Any]:
    """An example's stored ``data`` (text, image, meta) from an import record; problems to ``bad``."""
    data: dict[str, Any] = {}
    text = record.get("text")
    if text is not None:
        if not isinstance(text, str):
            bad("text", "must be a string")
        elif len(text) > MAX_TEXT:
            bad("text", f"longer than {MAX_TEXT} characters")
        else:
            data["text"] = text
    image = record.get("image")
    if image is not None:
        if not isinstance(image, str) or len(image) > MAX_IMAGE or not _is_image_ref(image):
            bad("image", "must be an http(s) URL or a data:image/... URI")
        else:
            data["image"] = image
    meta = record.get("meta")
    if meta is not None:
        if not isinstance(meta, dict):
            bad("meta", "must be an object")
        elif not is_storable_json(meta):
            bad("meta", "holds text that is not valid Unicode (a lone surrogate or a NUL character)")
        else:
            data["meta"] = meta
    return data


def _label_set(project: Project, value: Any, bad: Callable[[str, str], None]) -> str | None:
    """The stored form of a multi-label row's ``labels`` (None: not labeled). A CSV's cell is a
    list by now (``formats.labels_of_cell``); a string elsewhere is refused, as the labels route does."""
    if value is None:
        return None
    try:
        return tasks.encode(project, value, field="labels")
    except InvalidInput as exc:
        bad("labels", exc.problems[0].message)
        return None


def features_from_bytes(raw: bytes | None) -> list[float] | None:
    return None if raw is None else np.frombuffer(raw, dtype=np.float32).tolist()


def validate_row(record: dict[str, Any], line: int, labels: set[str], dim: list[int | None], *,
                 multi_label: Project | None = None) -> tuple[dict[str, Any] | None, list[Problem]]:
    """A clean row ``{"external_id", "data", "features" (bytes), "label"}`` of an import ``record``
    (1-based ``line``), or its problems. ``dim`` holds the project's vector length (set by the
    first vector when None). ``multi_label``: the project, when it is one; its rows carry
    ``labels`` (a list, or in CSV a ``|``-joined cell) and ``label`` is their stored form."""
    problems: list[Problem] = []
    fields = MULTI_LABEL_ROW_FIELDS if multi_label is not None else ROW_FIELDS

    def bad(field: str, message: str) -> None:
        problems.append(Problem(message, field=field, line=line))

    for key in [k for k in record if k in EXPORT_ONLY_FIELDS]:
        del record[key]
    for key in record:
        if key not in fields:
            bad(key, f"unknown field; valid ones are {', '.join(fields)}")
    for field in ("external_id", "text", "image", "label"):
        if isinstance(record.get(field), str) and not is_storable_text(record[field]):
            bad(field, "not valid Unicode text (a lone surrogate or a NUL character)")
    if problems:
        return None, problems
    ext = record["external_id"] if "external_id" in record else content_id(record)
    if isinstance(ext, bool) or not isinstance(ext, (str, int)) or str(ext).strip() == "":
        bad("external_id", "required: a non-empty string or integer")
    elif len(str(ext)) > 255:
        bad("external_id", "at most 255 characters")
    data = _data_of(record, bad)
    features = record.get("features")
    vector = _vector(features, dim, bad) if features is not None else None
    if record.get("text") is None and record.get("image") is None and features is None:
        bad("text", "each example needs text, image or features")
    label = record.get("label")
    if multi_label is not None:
        label = _label_set(multi_label, record.get("labels"), bad)
    elif label is not None and (not isinstance(label, str) or label not in labels):
        bad("label", f"{str(label)[:100]!r} is not one of the project's labels")
    if problems:
        return None, problems
    return {"external_id": str(ext).strip(), "data": data, "features": vector, "label": label}, []


def content_id(record: dict[str, Any]) -> str:
    """The id of a row that brings none, made from its content (text, image, features): the same
    content gets the same id, so importing a file again skips what is already here."""
    content = json.dumps([record.get("text"), record.get("image"), record.get("features")], ensure_ascii=False,
                         default=str)
    return "sha256:" + hashlib.sha256(content.encode()).hexdigest()[:24]


def _vector(features: Any, dim: list[int | None], bad: Any) -> bytes | None:
    if (not isinstance(features, list) or not features or len(features) > MAX_FEATURES
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       and abs(v) <= FLOAT32_MAX for v in features)):
        bad("features", "must be a non-empty list of finite numbers (stored as 32-bit floats)")
        return None
    if dim[0] is not None and len(features) != dim[0]:
        bad("features", f"has {len(features)} values; this project's vectors have {dim[0]}")
        return None
    dim[0] = len(features)
    return features_to_bytes(features)


def _is_image_ref(value: str) -> bool:
    if value.startswith("data:image/"):
        return True
    parsed = urlparse(value)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def project_feature_dim(session: Session, project_id: int) -> int | None:
    raw = session.scalar(
        select(Example.features).where(Example.project_id == project_id, Example.features.is_not(None)).limit(1)
    )
    return None if raw is None else len(raw) // 4


def import_examples(session: Session, project: Project, rows: Iterable[RawRow], *, source: str = "import",
                    now: datetime, random_state: int | np.random.Generator | None = None,
                    update_duplicates: bool = False) -> ImportResult:
    """Validate and insert ``rows``; on any problem insert nothing and raise.

    A row whose external id the project already has is a duplicate: skipped, or with
    ``update_duplicates`` its text, image, features and meta replace the stored ones (its label,
    if any, is not imported: labels are events, added through labeling or review).

    Rows are inserted in chunks while reading, so memory stays flat; the caller's transaction
    makes the whole import one unit (rolled back on error).

    Raises
    ------
    InvalidInput
        Listing the first problems by line and field, with the total count.
    """
    check_writable(project)
    check_source(source)
    if random_state is None and (seed := queue_seed(project)) is not None:
        random_state = [seed, project.n_examples]  # a replay of the same imports draws the same keys
    writer = ImportWriter(session, project, np.random.default_rng(random_state), now=now, source=source,
                          update_duplicates=update_duplicates)
    validator = RowValidator(session, project)
    chunk: list[dict[str, Any]] = []
    for clean in validator.clean_rows(rows):
        chunk.append(clean)
        if len(chunk) >= CHUNK:
            writer.write(chunk)
            chunk = []
    validator.check()
    writer.write(chunk)
    count_new_examples(session, project.id, writer.imported)
    return ImportResult(writer.imported, validator.valid - writer.imported, writer.labels, writer.updated)


def check_source(source: Any) -> None:
    if not isinstance(source, str) or not IMPORT_SOURCE.fullmatch(source):
        raise InvalidInput.one("a name of 1 to 60 letters, digits, '.', '_' or '-'", field="source")


class RowValidator:
    """Validates import rows against a project, counting valid rows and keeping the first problems."""

    def __init__(self, session: Session, project: Project) -> None:
        self.labels = set(label_names(project))
        self.multi_label = project if tasks.is_multi_label(project) else None
        self.dim = [project_feature_dim(session, project.id)]
        self.problems: list[Problem] = []
        self.groups = ProblemGroups()  # every problem, grouped: the first MAX_LISTED alone can mislead
        self.total_problems = self.valid = 0

    def clean_rows(self, rows: Iterable[RawRow]) -> Iterator[dict[str, Any]]:
        """The clean rows of ``rows`` until the first problem; after it, every row is still
        validated (to report every problem) but nothing more is yielded."""
        for row in rows:
            if row.problem is not None:
                self.total_problems += 1
                if len(self.problems) < InvalidInput.MAX_LISTED:
                    self.problems.append(row.problem)
                self.groups.add(row.problem)
                continue
            clean, row_problems = validate_row(row.record or {}, row.line, self.labels, self.dim,
                                               multi_label=self.multi_label)
            if row_problems:
                self.total_problems += len(row_problems)
                self.problems.extend(row_problems[: max(0, InvalidInput.MAX_LISTED - len(self.problems))])
                for problem in row_problems:
                    self.groups.add(problem)
                continue
            self.valid += 1
            if not self.total_problems:
                yield clean

    def check(self) -> None:
        """Raise InvalidInput when any row had a problem."""
        if self.total_problems:
            raise InvalidInput(f"{self.total_problems} problem(s) in the input; nothing was imported", self.problems,
                               self.total_problems)


class ImportWriter:
    """Inserts validated rows chunk by chunk (in the caller's transaction) and counts them.

    ``prepare`` does the Python work of a chunk (random draws, JSON, parameters) and touches no
    database, so a caller that commits each chunk can call it before the chunk's transaction
    begins: on SQLite that transaction holds the write lock annotators' writes wait for.

    The text index follows in the same statements: on SQLite triggers on ``examples`` add each
    new example to ``examples_fts`` and replace an updated duplicate's text (migration 0010); on
    PostgreSQL the trigram indexes are indexes of ``examples``."""

    COLUMNS = ("project_id", "external_id", "data", "features", "priority", "random_key", "n_labels",
               "needs_labels", "in_holdout", "created_at")

    def __init__(self, session: Session, project: Project, rng: np.random.Generator, *, now: datetime, source: str,
                 update_duplicates: bool) -> None:
        self.session, self.project_id, self.rng, self.now = session, project.id, rng, now
        self.source = f"import:{source}" if source != "import" else "import"
        self.update_duplicates = update_duplicates
        self.overlap, self.holdout_fraction = config(project).overlap, config(project).holdout_fraction
        self.imported = self.labels = self.updated = 0
        # Parameters as the driver takes them (the engine's JSON, SQLite's naive UTC text), made
        # by the column types themselves.
        dialect = session.get_bind().dialect
        columns = Example.__table__.c
        self._to_json = columns.data.type.bind_processor(dialect) or (lambda value: value)
        self._to_time = columns.created_at.type.bind_processor(dialect) or (lambda value: value)
        self._placeholder = "?" if dialect.paramstyle == "qmark" else "%s"

    def prepare(self, chunk: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, list[Any]]:
        """The chunk, one multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` and its parameters."""
        n = len(chunk)
        priorities, holdout, keys = self.rng.random(n), self.rng.random(n), self.rng.random(n)
        created = self._to_time(self.now)
        params: list[Any] = []
        for r, p, h, k in zip(chunk, priorities, holdout, keys):
            labeled = 1 if r["label"] else 0
            # Imported labels were not chosen by the queue: a random share evaluates models.
            params += (self.project_id, r["external_id"], self._to_json(r["data"]), r["features"], float(p), float(k),
                       labeled, labeled < self.overlap, bool(labeled and h < self.holdout_fraction), created)
        row = "(" + ", ".join([self._placeholder] * len(self.COLUMNS)) + ")"
        sql = (f"INSERT INTO examples ({', '.join(self.COLUMNS)}) VALUES {', '.join([row] * n)} "
               "ON CONFLICT (project_id, external_id) DO NOTHING RETURNING id, external_id")
        return chunk, sql, params

    def write(self, chunk: list[dict[str, Any]]) -> None:
        if chunk:
            self.write_prepared(self.prepare(chunk))

    def write_prepared(self, prepared: tuple[list[dict[str, Any]], str, list[Any]]) -> None:
        chunk, sql, params = prepared
        # One statement the driver runs as it is: SQLAlchemy's per-row parameter handling (and the
        # ORM's bookkeeping before it) took longer than the database did.
        inserted = {ext: eid for eid, ext in self.session.connection().exec_driver_sql(sql, tuple(params)).all()}
        # A row is new only where its id first appears: a later row with the same id in this
        # chunk is a duplicate, as one in a later chunk would be (its label is not imported).
        first: dict[str, int] = {}
        new = [first.setdefault(r["external_id"], i) == i and r["external_id"] in inserted for i, r in enumerate(chunk)]
        if self.update_duplicates:
            self.updated += _update_existing(self.session, self.project_id,
                                             [r for r, is_new in zip(chunk, new) if not is_new])
        label_rows = [
            {"project_id": self.project_id, "example_id": inserted[r["external_id"]], "value": r["label"],
             "created_at": self.now, "source": self.source}
            for r, is_new in zip(chunk, new) if r["label"] and is_new
        ]
        if label_rows:  # first labels of new examples: nothing to replace, so no flag to close
            self.session.connection().execute(insert(Label.__table__), label_rows)
        self.imported += len(inserted)
        self.labels += len(label_rows)


def _update_existing(session: Session, project_id: int, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    keep_revisions(session, project_id, [r["external_id"] for r in rows])
    # A new text needs a new sentence embedding: the stored one is dropped, and encoded again when read.
    updated = select(Example.id).where(Example.project_id == project_id,
                                       Example.external_id.in_([r["external_id"] for r in rows]))
    session.execute(delete(ExampleEmbedding).where(ExampleEmbedding.example_id.in_(updated)))
    # A new text also needs a new vocabulary: the featurizer cached for the pool is keyed on this.
    session.execute(update(Project).where(Project.id == project_id).values(pool_revision=Project.pool_revision + 1)
                    .execution_options(synchronize_session=False))
    table = Example.__table__
    session.execute(
        table.update()
        .where(table.c.project_id == project_id, table.c.external_id == bindparam("b_external_id"))
        .values(data=bindparam("b_data"), features=bindparam("b_features")),
        [{"b_external_id": r["external_id"], "b_data": r["data"], "b_features": r["features"]} for r in rows],
    )
    return len(rows)


def count_new_examples(session: Session, project_id: int, n: int) -> None:
    """Keep ``Project.n_examples`` in step, in the transaction that inserted the examples."""
    if n:
        session.execute(update(Project).where(Project.id == project_id).values(n_examples=Project.n_examples + n)
                        .execution_options(synchronize_session=False))


def get_example(session: Session, example_id: int) -> Example:
    example = session.get(Example, example_id)
    if example is None:
        raise NotFound(f"no example with id {example_id}")
    return example


def get_project_example(session: Session, project_id: int, example_id: int) -> Example:
    """The example, if it belongs to the project (an id under another project's path is not found)."""
    example = session.get(Example, example_id)
    if example is None or example.project_id != project_id:
        raise NotFound(f"no example with id {example_id} in this project")
    return example
