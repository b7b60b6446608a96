"""Browsing a project's examples: filters, one page of results with a capped total, one example's
full history, and a reviewer's relabel (a ``review`` event; nothing erased).

A page is two queries: the ids of the page's matches, then those examples by id (and a page's
labels, names and flags in one query each, never per row). The ids come from whichever filter
few examples pass (:func:`_statement`): the text index (migration 0014: SQLite FTS5 trigrams read
in id order; PostgreSQL's pg_trgm indexes, chosen by its planner), an annotator's labels or the
project's open flags (an ``IN`` list); the other filters are tested on each example along
``ix_examples_project_id_id`` (a label by an ``EXISTS`` on ``ix_labels_example_annotator``). The
total is counted up to :data:`TOTAL_CAP` by the same query. A text of one or two characters, which
no trigram index serves, is searched in the project's first :data:`SHORT_TEXT_EXAMPLES` examples
only, and the page says so.
"""

from __future__ import annotations

import json
import re

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from sqlalchemy import Select, and_, column, exists, func, literal_column, select, table, update
from sqlalchemy.orm import Session, aliased

from labeling import audit
from labeling.db import has_text_index
from labeling.errors import Conflict, InvalidInput, Problem
from labeling.examples import get_project_example
from labeling.labels import append_label_event
from labeling.models import Example, Label, LabelFlag, Project, User
from labeling import tasks
from labeling.projects import check_writable, config, label_names
from labeling.snapshots import current_labels_query
from labeling.validation import is_db_int, is_storable_text, unit_interval

STATUSES = ("labeled", "unlabeled", "flagged", "holdout", "disagreed")
# A filtered total is counted up to this many rows; more is shown as "more than".
TOTAL_CAP = 10_000
MAX_QUERY = 200

# The text index (migration 0014): SQLite FTS5 with the trigram tokenizer, which matches substrings of
# three characters or more; a shorter text is a substring scan, as is every text on a SQLite older
# than 3.34, which has no trigram tokenizer (the migration leaves the index out: labeling/db.py).
FTS_MIN = 3
# No trigram index serves a text of one or two characters: it is searched in the project's first
# this many examples (id order) only, about 50-100 ms on the 2-core VM; the page says so.
SHORT_TEXT_EXAMPLES = 50_000
# PostgreSQL: a text of several words hands its trigram index the word fewest of this many examples hold.
RARE_WORD_SAMPLE = 1_000
_WORD = re.compile(r"[^\W_]+")  # letters and digits
_FTS = table("examples_fts", column("rowid"), column("examples_fts"))

_Replacer = aliased(Label)
_LABELED = Example.n_labels > literal_column("0")
_Other, _OtherReplacer = aliased(Label), aliased(Label)


@dataclass(frozen=True)
class Filters:
    q: str = ""
    label: str = ""
    annotator: str = ""
    status: str = ""
    min_confidence: float | None = None
    max_confidence: float | None = None

    def any(self) -> bool:
        return any((self.q, self.label, self.annotator, self.status)) or self.min_confidence is not None \
            or self.max_confidence is not None


@dataclass
class Row:
    example: Example
    labels: list[tuple[Label, str | None]] = field(default_factory=list)
    open_flags: int = 0


@dataclass
class Page:
    rows: list[Row]
    total: int
    exact: bool  # False: there are more than ``total`` (``capped``), or may be (``searched``)
    # A short text's search stopped after the project's first ``searched`` examples (None: it read them all).
    searched: int | None = None
    capped: bool = False  # more matches than the cap (``total``) among those searched


def parse_filters(project: Project, args: Mapping[str, Any]) -> Filters:
    """The filters of a query string (API or page form); every bad one is named in one 422."""
    problems: list[Problem] = []
    text = {name: (args.get(name) or "").strip() for name in ("q", "label", "annotator", "status")}
    for name, value in text.items():
        if len(value) > MAX_QUERY or not is_storable_text(value):
            problems.append(Problem(f"must be text of at most {MAX_QUERY} characters", field=name))
    if text["label"] and text["label"] not in label_names(project):
        problems.append(Problem(f"must be one of {', '.join(label_names(project))}", field="label"))
    if text["status"] and text["status"] not in STATUSES:
        problems.append(Problem(f"must be one of {', '.join(STATUSES)}", field="status"))
    bounds = {name: unit_interval(args.get(name), name, problems) for name in ("min_confidence", "max_confidence")}
    if problems:
        raise InvalidInput("invalid filters", problems)
    return Filters(**text, **bounds)


def _current_label_exists(*conditions: Any) -> Any:
    """Some current label (a value nobody replaced) of the example satisfies ``conditions``."""
    return exists().where(Label.example_id == Example.id, Label.value.is_not(None),
                          ~exists().where(_Replacer.replaces_id == Label.id), *conditions)


def _annotators_disagree() -> Any:
    """Two current labels of the example differ: visible as soon as the second is given, before
    any retrain turns it into a flag."""
    differs = exists().where(_Other.example_id == Label.example_id, _Other.value.is_not(None), _Other.value != Label.value,
                             ~exists().where(_OtherReplacer.replaces_id == _Other.id))
    return and_(Example.n_labels > literal_column("1"), _current_label_exists(differs))


def _like_pattern(needle: str) -> str:
    return "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _text_matches(session: Session, project: Project, needle: str) -> Any:
    """The text search as a condition on ``examples``: on PostgreSQL ``ILIKE``, which its trigram
    indexes serve (:func:`_pg_text_matches`), elsewhere a substring test of the text and the
    external id lowercased by Python's ``str.lower`` (``hitl_lower``, registered on every SQLite
    connection by labeling/db.py: SQLite's own ``lower()`` folds ASCII letters only)."""
    if session.get_bind().dialect.name == "postgresql":
        return _pg_text_matches(session, project, needle)
    lowered = needle.lower()
    return (func.instr(func.hitl_lower(Example.data["text"].as_string()), lowered) > 0) \
        | (func.instr(func.hitl_lower(Example.external_id), lowered) > 0)


def _ilike(text: Any, external_id: Any, needle: str) -> Any:
    pattern = _like_pattern(needle)
    return text.ilike(pattern, escape="\\") | external_id.ilike(pattern, escape="\\")


def _pg_text_matches(session: Session, project: Project, needle: str) -> Any:
    """``ILIKE`` on the indexed expressions (written out as the indexes have them). A GIN trigram
    index reads the whole posting list of each trigram of the text, and a trigram that most
    examples hold costs about 25 ms at 1M examples: a text of several words (runs of 3 letters or
    digits or more, of which pg_trgm makes its trigrams) hands the index only its rarest word, the
    one fewest of the project's first :data:`RARE_WORD_SAMPLE` examples hold, if at most 1% hold
    it; the whole text is then tested on the rows the index returns, written so that no index
    serves it (``|| ''``). The matches are the same: every word is in each of them."""
    text = literal_column("(examples.data ->> 'text')")
    whole = _ilike(text, Example.external_id, needle)
    words = sorted({w.lower() for w in _WORD.findall(needle) if len(w) >= FTS_MIN}, key=lambda w: (-len(w), w))
    if len(words) < 2:
        return whole
    sample = [f"{t or ''}\n{e}".lower() for t, e in session.execute(
        select(text, Example.external_id).where(Example.project_id == project.id).order_by(Example.id)
        .limit(RARE_WORD_SAMPLE))]
    held = {w: sum(w in s for s in sample) for w in words}
    rarest = min(words, key=held.__getitem__)  # of equally rare words the longest (sorted first)
    if held[rarest] > max(1, len(sample) // 100):
        return whole
    return _ilike(text, Example.external_id, rarest) & _ilike(text.op("||")(""), Example.external_id.op("||")(""), needle)


def _annotator_ids(session: Session, name: str) -> Any:
    """The ids of the examples with a current label by the user ``name``, from ``labels`` by
    ``uq_labels_annotator_key`` (the annotator's labels, every project: the outer query keeps
    this project's)."""
    user_id = session.scalar(select(User.id).where(User.name == name))
    return select(Label.example_id).where(Label.annotator_id == (user_id or 0), Label.value.is_not(None),
                                          ~exists().where(_Replacer.replaces_id == Label.id))


def _has_label(project: Project, name: str) -> Any:
    """A label row that says ``name``: equal to it, or in a multi-label project a stored set
    (a JSON array, labeling/tasks.py) that holds it as one of its quoted names."""
    if not tasks.is_multi_label(project):
        return Label.value == name
    return Label.value.contains(json.dumps(name, ensure_ascii=False), autoescape=True)


def _statement(session: Session, project: Project, filters: Filters, *, upto_id: int | None = None) -> Select[Any]:
    """The ids of the matching examples in id order, unlimited (``upto_id``: up to that id). The
    filters few examples pass drive it: a text of three characters or more from ``examples_fts``
    on SQLite (read in rowid order, so a page stops when full), an annotator's labels and the open
    flags as an ``IN`` list of ids; the other filters are tested on each example along
    ``ix_examples_project_id_id``."""
    dialect = session.get_bind().dialect.name
    query, order = select(Example.id), Example.id
    where: list[Any] = [Example.project_id == project.id]
    if upto_id is not None:
        where.append(Example.id <= upto_id)
    if filters.q and dialect == "sqlite" and len(filters.q) >= FTS_MIN and has_text_index(session):
        query = select(Example.id).select_from(_FTS).join(Example, Example.id == _FTS.c.rowid)
        where.append(_FTS.c.examples_fts.match('"' + filters.q.replace('"', '""') + '"'))
        order = _FTS.c.rowid
    elif filters.q:
        where.append(_text_matches(session, project, filters.q))
    if filters.label:  # a current label means a labeled example: the walk reads ix_examples_labeled
        where += [_LABELED, _current_label_exists(_has_label(project, filters.label))]
    if filters.annotator:
        where.append(Example.id.in_(_annotator_ids(session, filters.annotator)))
    # "n_labels > 0" literally: SQLite matches the partial index ix_examples_labeled on it.
    status = {"labeled": _LABELED, "unlabeled": Example.n_labels == literal_column("0"),
              "holdout": Example.in_holdout.is_(True), "disagreed": _annotators_disagree(),
              "flagged": Example.id.in_(select(LabelFlag.example_id).where(
                  LabelFlag.project_id == project.id, LabelFlag.status == "open"))}
    if filters.status:
        where.append(status[filters.status])
    if filters.min_confidence is not None:
        where.append(Example.confidence >= filters.min_confidence)
    if filters.max_confidence is not None:
        where.append(Example.confidence <= filters.max_confidence)
    return query.where(*where).order_by(order)


def search(session: Session, project: Project, filters: Filters, *, limit: int = 100, offset: int = 0) -> Page:
    """One page of the project's examples matching ``filters``, in id order, with their current
    labels and open-flag counts, and the number of matches (capped at :data:`TOTAL_CAP`): the
    page's ids first, then its examples by id. With filters, one query reads the ids of the first
    matches up to the cap's, which both count and hold the page (the count walked as far anyway);
    a page past the cap is a query of its own and the capped count another. A text shorter than
    :data:`FTS_MIN` is searched in the project's first :data:`SHORT_TEXT_EXAMPLES` examples only
    (``Page.searched`` says so, and the total is not exact)."""
    upto_id = _short_text_end(session, project, filters)
    statement = _statement(session, project, filters, upto_id=upto_id)
    if not filters.any():
        ids, total, exact = list(session.scalars(statement.limit(limit).offset(offset))), project.n_examples, True
    else:
        if offset + limit <= TOTAL_CAP + 1:
            matches = list(session.scalars(statement.limit(TOTAL_CAP + 1)))
            ids, counted = matches[offset:offset + limit], len(matches)
        else:
            ids = list(session.scalars(statement.limit(limit).offset(offset)))
            counted = session.scalar(_count_statement(statement)) or 0
        total, exact = min(counted, TOTAL_CAP), counted <= TOTAL_CAP and upto_id is None
    found = {e.id: e for e in session.scalars(select(Example).where(Example.id.in_(ids)))} if ids else {}
    return Page(_with_details(session, project, [found[i] for i in ids]), total, exact,
                searched=None if upto_id is None else SHORT_TEXT_EXAMPLES, capped=filters.any() and counted > TOTAL_CAP)


def _short_text_end(session: Session, project: Project, filters: Filters) -> int | None:
    """For a text too short for a trigram index, the id of the project's
    :data:`SHORT_TEXT_EXAMPLES`-th example, the last one searched (a walk of that many entries of
    ``ix_examples_project_id_id``); None when the search reads every example: a longer text, or a
    project with no more examples than that."""
    if not filters.q or len(filters.q) >= FTS_MIN:
        return None
    last_and_next = list(session.scalars(select(Example.id).where(Example.project_id == project.id)
                                         .order_by(Example.id).offset(SHORT_TEXT_EXAMPLES - 1).limit(2)))
    return last_and_next[0] if len(last_and_next) == 2 else None


def _count_statement(statement: Select[Any]) -> Select[Any]:
    """How many rows ``statement`` has, up to one more than the cap. Its order stays: without it
    SQLite would walk the project's examples and probe the text index with each."""
    return select(func.count()).select_from(statement.limit(TOTAL_CAP + 1).subquery())


def _with_details(session: Session, project: Project, examples: list[Example]) -> list[Row]:
    rows = {e.id: Row(e) for e in examples}
    if not rows:
        return []
    current = current_labels_query(project.id, example_ids=list(rows)).subquery()
    for label, name in session.execute(
            select(aliased(Label, current), User.name).outerjoin(User, User.id == current.c.annotator_id)
            .order_by(current.c.id)):
        rows[label.example_id].labels.append((label, name))
    for example_id, n in session.execute(
            select(LabelFlag.example_id, func.count()).where(LabelFlag.example_id.in_(list(rows)),
                                                               LabelFlag.status == "open")
            .group_by(LabelFlag.example_id)):
        rows[example_id].open_flags = n
    return list(rows.values())


@dataclass
class History:
    example: Example
    events: list[tuple[Label, str | None]]  # every label event, oldest first
    current_ids: set[int]
    flags: list[tuple[LabelFlag, str | None]]  # with who resolved it


def history(session: Session, example: Example) -> History:
    """Every label event on an example (who, when, source, value, what it replaced), which are
    current, and every flag raised on its labels: three queries."""
    events = list(session.execute(
        select(Label, User.name).outerjoin(User, User.id == Label.annotator_id)
        .where(Label.example_id == example.id).order_by(Label.id)))
    replaced = {label.replaces_id for label, _ in events if label.replaces_id is not None}
    current = {label.id for label, _ in events if label.value is not None and label.id not in replaced}
    flags = list(session.execute(
        select(LabelFlag, User.name).outerjoin(User, User.id == LabelFlag.resolved_by_id)
        .where(LabelFlag.example_id == example.id).order_by(LabelFlag.id)))
    return History(example, events, current, flags)


def relabel(session: Session, project: Project, reviewer: User, example_id: int, value: Any, *,
            label_id: Any = None, now: datetime) -> int:
    """A reviewer's or admin's label for an example: a new ``review`` event replacing the current
    label (``label_id``, needed when the example has several), or the example's first label.
    The replaced label stays in the history and its open flags close (``append_label_event``);
    audited as ``example.relabeled``. Returns the new event's id.

    Raises
    ------
    InvalidInput
        Unknown label, the same value as the replaced label, or ``label_id`` missing or not current.
    Conflict
        The project is archived, or the label was replaced at the same moment.
    """
    check_writable(project)
    value = tasks.encode(project, value)
    get_project_example(session, project.id, example_id)  # 404 unless it is this project's
    replaced = _label_to_replace(session, project, example_id, label_id)
    if replaced is not None and replaced.value == value:
        raise InvalidInput.one(f"is already the label ({value}); choose another", field=tasks.annotation_field(project))
    new_id = append_label_event(session, now=now, project_id=project.id, example_id=example_id,
                                annotator_id=reviewer.id, value=value, source="review",
                                replaces_id=replaced.id if replaced is not None else None)
    if new_id is None:
        raise Conflict("this label was replaced at the same moment; reload and try again")
    if replaced is None:  # a first label counts like an annotator's
        session.execute(update(Example).where(Example.id == example_id).values(
            n_labels=Example.n_labels + 1, needs_labels=Example.n_labels + 1 < config(project).overlap)
            .execution_options(synchronize_session=False))
    audit.record(session, reviewer, "example.relabeled", project_id=project.id, target=example_id, now=now,
                 details={"from": replaced.value if replaced is not None else None, "to": value,
                          "replaced_label": replaced.id if replaced is not None else None, "label": new_id})
    return new_id


def _label_to_replace(session: Session, project: Project, example_id: int, label_id: Any) -> Label | None:
    current = list(session.scalars(current_labels_query(project.id, example_ids=[example_id]).order_by(Label.id)))
    if label_id is None or label_id == "":
        if len(current) > 1:
            raise InvalidInput.one("this example has several current labels: name the one to replace",
                                   field="label_id")
        return current[0] if current else None
    if isinstance(label_id, str) and label_id.isdigit():
        label_id = int(label_id)
    if not is_db_int(label_id):
        raise InvalidInput.one("must be a positive integer id", field="label_id")
    for label in current:
        if label.id == label_id:
            return label
    raise InvalidInput.one("must be the id of a current label of this example", field="label_id")
