"""Predictions of the champion for examples sent by a caller, optionally queued for labeling."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import numpy as np
import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from active_learning import embeddings
from active_learning.evaluation import predict_with_confidence
from active_learning.multilabel import informativeness as multilabel_informativeness
from active_learning.multilabel import is_multilabel, predicted_sets
from active_learning.names import INPUT_KIND, NEEDS_EMBEDDINGS
from active_learning.strategies import informativeness
from labeling import tasks
from labeling.errors import InvalidInput, Problem, Unavailable
from labeling.examples import count_new_examples, project_feature_dim, validate_row
from labeling.features import inputs_from_records
from labeling.models import Example, Project
from labeling.projects import MULTILABEL_DEFAULT, check_writable, config, label_names
from labeling.registry import load_champion
from labeling.queue import BATCH_BAND
from labeling.stats import UNSURE_BELOW
from labeling.suggestions import stored_probabilities

UNCERTAIN_BELOW = UNSURE_BELOW  # predictions less sure than this are queued when the caller asks
MAX_RECORDS = 10000


def _validate(records: Any) -> None:
    if not isinstance(records, list) or not records or len(records) > MAX_RECORDS:
        raise InvalidInput.one(f"examples must be a list of 1 to {MAX_RECORDS} objects", field="examples")
    problems = [Problem("must be an object with text or features", field="examples", line=i)
                for i, r in enumerate(records, start=1)
                if not isinstance(r, dict) or (r.get("text") is None and r.get("features") is None)]
    problems += [Problem("must be a string", field="text", line=i) for i, r in enumerate(records, start=1)
                 if isinstance(r, dict) and r.get("text") is not None and not isinstance(r["text"], str)]
    if problems:
        raise InvalidInput("invalid examples", problems)


def predict(session: Session, project: Project, records: Any, *, enqueue_uncertain: bool = False,
            uncertain_below: float = UNCERTAIN_BELOW, now: datetime) -> dict[str, Any]:
    """The champion's predictions for ``records``; optionally queue the unsure ones for labeling.

    Raises
    ------
    InvalidInput
        Records that are not objects with ``text`` or ``features`` (by 1-based position).
    Conflict
        No model has been trained yet, or (``enqueue_uncertain``) the project is archived.
    Unavailable
        The champion reads sentence embeddings and this process lacks the ``embeddings`` extra
        (a worker that has it trained the champion).
    """
    _validate(records)
    if enqueue_uncertain:
        check_writable(project)
    settings = config(project)
    rng = np.random.default_rng(None if settings.queue_seed is None else [settings.queue_seed, project.n_examples])
    rows = _validated_for_queue(session, project, records, rng) if enqueue_uncertain else None
    version, model = load_champion(session, project)
    featurizer = version.metrics.get("featurizer", "tfidf")
    if featurizer in NEEDS_EMBEDDINGS and not embeddings.available():
        raise Unavailable(f"the champion (version {version.version}) reads sentence embeddings (featurizer "
                          f"{featurizer}), and this process cannot encode them; {embeddings.MISSING}")
    kind = INPUT_KIND[featurizer]
    names, multi = label_names(project), is_multilabel(model)
    try:
        X = inputs_from_records(kind, records)
        if multi:
            probs = model.predict_proba(X)
            result = _predict_sets(probs, version.version, names)
        else:
            classes = [str(c) for c in model.classes_]
            pred_probs, predicted, confidence = predict_with_confidence(model, X)
            result = _predict_labels(pred_probs, predicted, confidence, version.version, classes)
    except (ValueError, TypeError) as exc:
        raise InvalidInput.one(f"the model cannot read these examples: {exc}", field="examples") from None
    if enqueue_uncertain:
        scored = (_scored_sets(probs, names, settings.strategy) if multi
                  else _scored_labels(pred_probs, predicted, confidence, classes, settings.strategy))
        result["enqueued"] = _enqueue(session, project, rows, scored, version.version, rng,
                                      uncertain_below=uncertain_below, now=now)
    return result


def _predict_labels(pred_probs: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, version: int,
                    classes: list[str]) -> dict[str, Any]:
    """A single-label champion's answer: each example's label, its probability and every class's."""
    return {
        "model_version": version,
        "predictions": [
            {"label": str(p), "confidence": round(float(c), 6),
             "probabilities": {cls: round(float(v), 6) for cls, v in zip(classes, row)}}
            for p, c, row in zip(predicted, confidence, pred_probs)
        ],
        "enqueued": 0,
    }


def _predict_sets(probs: np.ndarray, version: int, names: list[str]) -> dict[str, Any]:
    """A multi-label champion's answer: the set (each label at probability 0.5 or more), the
    set's probability (``confidence``) and each label's probability."""
    _, confidence, _ = predicted_sets(probs, names)
    return {"model_version": version, "enqueued": 0, "predictions": [
        {"labels": [n for n, p in zip(names, row) if p >= 0.5], "confidence": round(float(c), 6),
         "probabilities": {n: round(float(p), 6) for n, p in zip(names, row)}}
        for row, c in zip(probs, confidence)]}


# What the queue stores of a prediction, per example, as the re-scoring of the pool stores it
# (labeling/rescoring.py): predicted label (a set as stored), confidence, the project's strategy
# score and the suggestion's probabilities (JSON text).
Scored = Iterable[tuple[str, float, float, str]]


def _scored_labels(pred_probs: np.ndarray, predicted: np.ndarray, confidence: np.ndarray, classes: list[str],
                   strategy: str) -> Scored:
    """Single-label: the top probabilities; the ``random`` strategy scores by margin."""
    scores = informativeness(pred_probs, strategy if strategy != "random" else "margin")
    return zip((str(p) for p in predicted), confidence, scores, stored_probabilities(pred_probs, classes))


def _scored_sets(probs: np.ndarray, names: list[str], strategy: str) -> Scored:
    """Multi-label: the set as a JSON array in the project's label order and every label's
    probability; the ``random`` strategy scores by the default multi-label measure."""
    sets, confidence, per_label = predicted_sets(probs, names)
    scores = multilabel_informativeness(probs, strategy if strategy != "random" else MULTILABEL_DEFAULT)
    return zip(sets, confidence, scores, per_label)


def _validated_for_queue(session: Session, project: Project, records: list[dict[str, Any]],
                         rng: np.random.Generator) -> list[dict[str, Any]]:
    """Records checked as an import checks its rows (fields, sizes, vector length; ``labels``
    rather than ``label`` in a multi-label project); a record without ``external_id`` gets
    ``predict-<random hex>``. Raises InvalidInput by position."""
    labels, dim = set(label_names(project)), [project_feature_dim(session, project.id)]
    multi_label = project if tasks.is_multi_label(project) else None
    clean, problems = [], []
    for line, record in enumerate(records, start=1):
        record = {"external_id": f"predict-{rng.bytes(8).hex()}", **record}
        row, row_problems = validate_row(record, line, labels, dim, multi_label=multi_label)
        clean.append(row)
        problems += row_problems
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in examples to queue; nothing was queued", problems)
    return clean


def _enqueue(session: Session, project: Project, rows: list[dict[str, Any]], scored: Scored, version: int,
             rng: np.random.Generator, *, uncertain_below: float, now: datetime) -> int:
    """Add the unsure rows (validated) to the queue, above the pool the model scored (batch band).

    ``scored`` holds per row what the re-scoring stores (``Scored``); a row whose ``external_id``
    the project already has is left out. Returns the number added."""
    enqueued = 0
    for row, (predicted, c, s, top) in zip(rows, scored):
        if c >= uncertain_below:
            continue
        exists = session.scalar(select(Example.id).where(Example.project_id == project.id,
                                                         Example.external_id == row["external_id"]))
        if exists is not None:
            continue
        session.add(Example(
            project_id=project.id, external_id=row["external_id"], data=row["data"], features=row["features"],
            priority=float(s) + BATCH_BAND, random_key=float(rng.random()),
            scored_by_version=version, predicted_label=predicted, confidence=float(c), created_at=now,
            suggestion_probs=orjson.loads(top),
        ))
        enqueued += 1
    session.flush()
    count_new_examples(session, project.id, enqueued)
    return enqueued
