"""Model inputs: which featurizer a project uses, stored examples turned into what it reads, and
the featurizer fitted on the project's whole pool (cached, so a retrain does not refit it)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from active_learning.featurize import INPUT_KIND, fit_featurizer, make_featurizer, resolve_featurizer
from labeling.db import read_in_own_transaction, write_many_in_short_transactions
from labeling.models import Example, ExampleEmbedding, Project
from labeling.projects import config

READ_CHUNK = 5000
POOL_FIT_SAMPLE = 50_000  # a vocabulary and its IDF settle long before this many examples
# "auto" adds sentence embeddings to TF-IDF up to this many examples: each is encoded once, at
# about 5 ms a text on these cores, so a first retrain of a pool this size encodes for ~4 minutes.
AUTO_EMBEDDINGS_MAX_POOL = 50_000
_CACHE_SIZE = 4
FEATURIZER_CHECK_ROWS = 200  # examples read to tell whether a chosen featurizer finds its input
_cache: OrderedDict[tuple, Any] = OrderedDict()
_cache_lock = threading.Lock()


def featurizer_for(session: Session, project: Project) -> str:
    setting = config(project).featurizer
    if setting != "auto":
        return resolve_featurizer(setting, has_vectors=False)
    has_vectors = session.scalar(
        select(Example.id).where(Example.project_id == project.id, Example.features.is_not(None)).limit(1)
    ) is not None
    return resolve_featurizer(setting, has_vectors=has_vectors, embeddings_ok=not has_vectors and _embeddings_ok(session, project))


def _embeddings_ok(session: Session, project: Project) -> bool:
    """Whether "auto" may read sentence embeddings: the extra is installed and the pool is small
    enough to encode (docs/benchmarks.md: on real text they save most of the labels)."""
    from active_learning import embeddings

    if not embeddings.available():
        return False
    beyond = session.scalar(select(Example.id).where(Example.project_id == project.id)
                            .order_by(Example.id).offset(AUTO_EMBEDDINGS_MAX_POOL).limit(1))
    return beyond is None


def model_inputs(kind: str, rows: Sequence[tuple[dict[str, Any], bytes | None]]) -> Any:
    """Turn stored examples ``(data, features bytes)`` into what a featurizer of ``kind`` takes."""
    if kind == "text":
        return [str(data.get("text") or "") for data, _ in rows]
    if kind == "vector":
        if any(raw is None for _, raw in rows):
            raise ValueError("the 'features' featurizer needs a features vector on every example")
        return np.vstack([np.frombuffer(raw, dtype=np.float32) for _, raw in rows]) if rows else np.empty((0, 0))
    return [{k: float(v) for k, v in (data.get("meta") or {}).items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)} for data, _ in rows]


def inputs_from_records(kind: str, records: Sequence[dict[str, Any]]) -> Any:
    """Model inputs for examples sent to ``predict`` (not stored)."""
    rows = []
    for record in records:
        raw = np.asarray(record["features"], dtype=np.float32).tobytes() if record.get("features") is not None else None
        rows.append(({"text": record.get("text"), "meta": record.get("meta")}, raw))
    return model_inputs(kind, rows)


def read_rows(session: Session, ids: Sequence[int], *extra: Any) -> dict[int, Any]:
    """Rows ``(id, data, features, *extra columns)`` of the examples ``ids`` by id (read in chunks)."""
    rows: dict[int, Any] = {}
    for start in range(0, len(ids), READ_CHUNK):
        part = list(ids[start:start + READ_CHUNK])
        for row in session.execute(select(Example.id, Example.data, Example.features, *extra).where(Example.id.in_(part))):
            rows[row[0]] = row
    return rows


def inputs_of_rows(kind: str, rows: dict[int, Any], ids: Sequence[int]) -> Any:
    """Model inputs of ``ids`` (in that order) from rows read by :func:`read_rows`."""
    return model_inputs(kind, [(rows[i][1] or {}, rows[i][2]) for i in ids])


def featurizer_problem(session: Session, project: Project, featurizer: str) -> str | None:
    """Why ``featurizer`` cannot read the project's examples, or None (it can, or none are here
    yet). A retrain with such a featurizer failed with scikit-learn's words on an empty input."""
    if featurizer == "auto":
        return None
    kind = INPUT_KIND[featurizer]
    if kind == "vector":
        without = select(Example.id).where(Example.project_id == project.id, Example.features.is_(None)).limit(1)
        return None if session.scalar(without) is None else (
            f"{featurizer!r} reads each example's features vector, and some examples of this project have none")
    ids = list(session.scalars(select(Example.id).where(Example.project_id == project.id).order_by(Example.id)
                               .limit(FEATURIZER_CHECK_ROWS)))
    if not ids or any(read_inputs(session, ids, kind)):  # a text, or numeric meta fields
        return None
    what = "text" if kind == "text" else "numeric meta fields"
    return f"{featurizer!r} reads each example's {what}, and the first {len(ids)} examples of this project have none"


def subset(inputs: Any, mask: np.ndarray) -> Any:
    """The rows of model ``inputs`` (an array, a sparse matrix or a list) where ``mask`` is true."""
    if isinstance(inputs, np.ndarray) or hasattr(inputs, "tocsr"):
        return inputs[mask]
    return [x for x, keep in zip(inputs, mask) if keep]


def read_inputs(session: Session, ids: Sequence[int], kind: str) -> Any:
    """Model inputs of the examples ``ids``, in that order (read in chunks)."""
    return inputs_of_rows(kind, read_rows(session, ids), ids)


def pool_featurizer(session: Session, project: Project, featurizer: str, *, random_state: int = 0) -> Any:
    """The featurizer fitted, without labels, on the project's pool (a seeded sample of at most
    ``POOL_FIT_SAMPLE`` examples): a vocabulary and IDF from every example, not only the labeled
    ones. Cached per process until the pool changes (its size, its newest example, or a text
    replaced in place: ``Project.pool_revision``) or the project is another under the same id.

    Commits: the pool is read in a read-only transaction, ended before fitting (seconds for a large
    pool), so a run holds no lock while it fits. Call it with no transaction open.
    """
    if featurizer == "embeddings":  # nothing to fit: a pretrained encoder
        return make_featurizer(featurizer)
    read_in_own_transaction(session)
    # created_at: SQLite gives a deleted project's id, and its examples' ids, to the next ones.
    created = session.scalar(select(Project.created_at).where(Project.id == project.id))
    key = (project.id, created, featurizer, *pool_state(session, project.id), random_state)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            session.commit()
            return _cache[key]
    ids = list(session.scalars(select(Example.id).where(Example.project_id == project.id).order_by(Example.id)))
    if len(ids) > POOL_FIT_SAMPLE:
        ids = sorted(np.random.default_rng(random_state).choice(ids, POOL_FIT_SAMPLE, replace=False).tolist())
    pool = read_inputs(session, ids, INPUT_KIND[featurizer])
    session.commit()
    fitted = fit_featurizer(featurizer, pool)
    with _cache_lock:
        _cache[key] = fitted
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return fitted


def pool_state(session: Session, project_id: int) -> list[int]:
    """What a pool fit depends on: the pool's size, its newest example and its text revision."""
    n, newest = session.execute(select(func.count(), func.max(Example.id)).where(
        Example.project_id == project_id)).one()
    revision = session.scalar(select(Project.pool_revision).where(Project.id == project_id))
    return [n, newest or 0, revision or 0]


# --- featurized rows ----------------------------------------------------------------------

def stores_vectors(model: Any) -> bool:
    """Whether a serving model's featurizer reads sentence embeddings, which are stored per example."""
    return _reads_store(model[0])


def _reads_store(fitted: Any) -> bool:
    from active_learning.embeddings import SentenceEmbedder, TextAndEmbeddings

    return isinstance(fitted, (SentenceEmbedder, TextAndEmbeddings))


def from_store(session: Session, fitted: Any, ids: Sequence[int], *, texts: Sequence[str] | None = None) -> Any:
    """Featurized rows of ``ids`` for a featurizer that reads sentence embeddings: those come from
    the store (see :func:`stored_embeddings`); a TF-IDF part beside them reads the texts."""
    from active_learning.embeddings import TextAndEmbeddings

    if not isinstance(fitted, TextAndEmbeddings):
        return stored_embeddings(session, fitted, ids, texts=texts)
    if texts is None:
        read_in_own_transaction(session)
        texts = read_inputs(session, ids, "text")
        session.commit()
    return fitted.combine(texts, stored_embeddings(session, fitted.embedder_, ids, texts=texts))


def featurized(session: Session, featurizer: str, fitted: Any, ids: Sequence[int], *, inputs: Any = None) -> Any:
    """Featurized rows of the examples ``ids`` (in that order) for a ``fitted`` featurizer.

    Sentence embeddings come from the store, and those missing are encoded and stored (see
    :func:`from_store`); other featurizers transform ``inputs`` (read when not given).
    """
    if _reads_store(fitted):
        return from_store(session, fitted, ids, texts=inputs)
    if inputs is None:
        inputs = read_inputs(session, ids, INPUT_KIND[featurizer])
    return fitted.transform(inputs)


def champion_rows(champion_features: Any, features: Any, X_hold: Any, Z_hold: Any) -> Any:
    """The champion's rows for a holdout that this run featurized as ``Z_hold`` (from raw inputs
    ``X_hold``): when both read sentence embeddings, those in ``Z_hold`` are reused (encoding them
    again would cost seconds); else the champion's own featurizer reads ``X_hold``."""
    from active_learning.embeddings import SentenceEmbedder, TextAndEmbeddings

    if isinstance(features, SentenceEmbedder) and isinstance(champion_features, SentenceEmbedder):
        return Z_hold
    if isinstance(features, TextAndEmbeddings) and isinstance(champion_features, TextAndEmbeddings):
        return champion_features.combine(X_hold, features.embeddings_in(Z_hold))
    return champion_features.transform(X_hold)


_INSERT_EMBEDDING = "INSERT INTO example_embeddings (example_id, vector) VALUES (?, ?) ON CONFLICT DO NOTHING"


def stored_embeddings(session: Session, embedder: Any, ids: Sequence[int], *, texts: Sequence[str] | None = None) -> np.ndarray:
    """Embeddings of the examples ``ids``, shape ``(len(ids), d)``: read from the store, the
    missing ones encoded with ``embedder`` and stored (``texts``, aligned with ``ids``, saves
    reading them). Commits: reads end before encoding (seconds per thousand texts), and the new
    vectors are written in short transactions, so no lock is held while the encoder runs."""
    vectors: dict[int, np.ndarray] = {}
    for start in range(0, len(ids), READ_CHUNK):
        read_in_own_transaction(session)
        part = list(ids[start:start + READ_CHUNK])
        for example_id, raw in session.execute(select(ExampleEmbedding.example_id, ExampleEmbedding.vector)
                                               .where(ExampleEmbedding.example_id.in_(part))):
            vectors[example_id] = np.frombuffer(raw, dtype=np.float32)
        session.commit()
    missing = [i for i in ids if i not in vectors]
    if missing:
        if texts is not None:
            by_id = dict(zip(ids, texts))
            missing_texts = [by_id[i] for i in missing]
        else:
            read_in_own_transaction(session)
            missing_texts = read_inputs(session, missing, "text")
            session.commit()
        encoded = np.asarray(embedder.transform(missing_texts), dtype=np.float32)
        write_many_in_short_transactions(session, _INSERT_EMBEDDING,
                                         [(i, v.tobytes()) for i, v in zip(missing, encoded)])
        vectors.update(zip(missing, encoded))
    if not ids:
        return np.empty((0, 0), dtype=np.float32)
    return np.vstack([vectors[i] for i in ids])
