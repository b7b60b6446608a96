"""Model inputs: which featurizer a project uses, stored examples turned into what it reads, and
the featurizer fitted on the project's whole pool (cached, so a retrain does not refit it)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from active_learning.featurize import INPUT_KIND, fit_featurizer, resolve_featurizer
from labeling.models import Example, Project

READ_CHUNK = 5000
POOL_FIT_SAMPLE = 50_000  # a vocabulary and its IDF settle long before this many examples
_CACHE_SIZE = 4
_cache: OrderedDict[tuple, Any] = OrderedDict()
_cache_lock = threading.Lock()


def featurizer_for(session: Session, project: Project) -> str:
    has_vectors = session.scalar(
        select(Example.id).where(Example.project_id == project.id, Example.features.is_not(None)).limit(1)
    ) is not None
    return resolve_featurizer(project.settings.get("featurizer", "auto"), has_vectors=has_vectors)


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


def read_inputs(session: Session, ids: Sequence[int], kind: str) -> Any:
    """Model inputs of the examples ``ids``, in that order (read in chunks)."""
    rows: dict[int, tuple[dict[str, Any], bytes | None]] = {}
    for start in range(0, len(ids), READ_CHUNK):
        part = list(ids[start:start + READ_CHUNK])
        for eid, data, raw in session.execute(
                select(Example.id, Example.data, Example.features).where(Example.id.in_(part))):
            rows[eid] = (data or {}, raw)
    return model_inputs(kind, [rows[i] for i in ids])


def pool_featurizer(session: Session, project: Project, featurizer: str, *, random_state: int = 0) -> Any:
    """The featurizer fitted, without labels, on the project's pool (a seeded sample of at most
    ``POOL_FIT_SAMPLE`` examples): a vocabulary and IDF from every example, not only the labeled
    ones. Cached per process until the pool changes (its size or newest example)."""
    n, newest = session.execute(select(func.count(), func.max(Example.id)).where(
        Example.project_id == project.id)).one()
    key = (project.id, featurizer, n, newest, random_state)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    ids = list(session.scalars(select(Example.id).where(Example.project_id == project.id).order_by(Example.id)))
    if len(ids) > POOL_FIT_SAMPLE:
        ids = sorted(np.random.default_rng(random_state).choice(ids, POOL_FIT_SAMPLE, replace=False).tolist())
    fitted = fit_featurizer(featurizer, read_inputs(session, ids, INPUT_KIND[featurizer]))
    with _cache_lock:
        _cache[key] = fitted
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return fitted
