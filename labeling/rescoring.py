"""The queue's order: re-scoring the pool with a model, and a cold start before any model.

Priorities live in bands, so that one ordering can sit on top of another without a second index:
model scores are in ``[0, 1]``; the next batch's picks (ranked batch, diverse batch) are lifted into
``[1, 2)`` and cold-start picks into ``[2, 3)``, above everything the model scored.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import literal, or_, select, update
from sqlalchemy.orm import Session

from active_learning.evaluation import predict_with_confidence
from active_learning.multilabel import informativeness as multilabel_informativeness
from active_learning.multilabel import is_multilabel, predicted_sets
from active_learning.names import INPUT_KIND
from active_learning.cold_start import cold_start_order
from active_learning.label_errors import MIN_KAPPA
from active_learning.strategies import diverse_top, informativeness, rank_batch, top_k
from active_learning.typicality import typicality
from labeling.db import checkpoint_wal, read_in_own_transaction, write_many_in_short_transactions
from labeling.features import (featurized, featurizer_for, model_inputs, pool_featurizer, read_inputs,
                               from_store, stores_vectors)
from labeling.models import Example, ModelVersion, Project
from labeling.projects import config, label_names
from labeling.queue import BATCH_BAND, COLD_START_BAND
from labeling.stats import UNSURE_BELOW
from labeling.suggestions import stored_probabilities

SCORE_CHUNK = 5000
BATCH_SIZE = 50  # examples the ranked batch orders at the top of the queue
BATCH_SHORTLIST = 2000
# Diverse batches: the picks until the next retrain (its threshold, within these bounds), from a
# shortlist this many times as long.
DIVERSE_MIN, DIVERSE_MAX, DIVERSE_SHORTLIST_FACTOR = 10, 200, 10
# Typical picks: the top scores, this many times the shortlist (at most ``TYPICAL_CANDIDATES_MAX``),
# are weighed by typicality measured against a uniform sample of the pool of ``TYPICAL_SAMPLE`` rows.
TYPICAL_CANDIDATES_FACTOR, TYPICAL_CANDIDATES_MAX, TYPICAL_SAMPLE = 10, 10000, 20000
TYPICAL_BELOW_KAPPA = MIN_KAPPA  # typical picks while a model agrees with its labels less (``labels_look_ambiguous``)
COLD_START_SEEDS = 200
COLD_START_SAMPLE = 20000
COLD_START_LABELED_SAMPLE = 250  # labeled rows the cold start and discovery cluster with the sample
# What a run that could not train says of the queue meanwhile (``apply_cold_start``).
COLD_START_NOTE = "the queue serves typical examples first meanwhile (a random project: a random order)"
# Why a run trained nothing (its result's ``skipped``).
TOO_FEW_LABELS = f"a model needs labels of at least two classes outside the holdout; {COLD_START_NOTE}"
TOO_FEW_SETS = ("a multi-label model needs at least two labeled examples outside the holdout and one label "
                f"chosen; {COLD_START_NOTE}")
DISCOVERY_LABELS_PER_CLASS = 5  # diverse picks while a declared class has no label, up to this many labels per class

_WRITE_SCORES = ("UPDATE examples SET priority = ?, predicted_label = ?, confidence = ?, suggestion_probs = ?, "
                 "scored_by_version = ? WHERE id = ?")


def _banded(band: float, ids: list[int], order: np.ndarray) -> list[dict[str, Any]]:
    """Priorities in ``(band, band + 1)`` for ``ids`` picked in ``order``, first pick highest."""
    n = len(order)
    return [{"id": ids[int(i)], "priority": band + (n - rank) / (n + 1)} for rank, i in enumerate(order)]


def rescore_pool(session: Session, project: Project, model: Any, version: int, *, kind: str, Z_labeled: Any = None,
                 heartbeat: Callable[[], None] | None = None, random_state: int = 0,
                 version_metrics: dict | None = None) -> int:
    """Store priority, predicted label, confidence, the top probabilities (the labeling page's
    suggestion) and model version on every unlabeled example, read in chunks of ``SCORE_CHUNK``
    and written in short transactions, so no lock is held for long. With the ``batch`` strategy,
    the top of the queue is then reordered by modAL's ranked batch on a shortlist, away from
    ``Z_labeled`` (the labeled rows featurized for ``model``, or a function that makes them);
    with diverse batches, by ``diverse_top``, on scores weighed by typicality while the
    ``version_metrics`` say its labels look ambiguous (``typical_picks``). ``heartbeat`` is
    called after each chunk. Returns the number scored."""
    settings = config(project)
    strategy, names = settings.strategy, label_names(project)
    diverse = strategy not in ("random", "batch") and settings.diverse_batches
    typical = (diverse and settings.typical_picks and settings.task == "single_label"
               and labels_look_ambiguous(version_metrics))
    rng = np.random.default_rng(random_state)
    last_id, total, unsure = 0, 0, 0
    uncertain_ids: list[np.ndarray] = []
    uncertain_scores: list[np.ndarray] = []
    # Read only what the featurizer needs: decoding every row's JSON costs as much as predicting.
    columns = (Example.id, Example.features, literal(None)) if kind == "vector" else (Example.id, literal(None), Example.data)
    while True:
        read_in_own_transaction(session)
        rows = session.execute(
            select(*columns)
            .where(Example.project_id == project.id, Example.needs_labels, Example.id > last_id)
            .order_by(Example.id).limit(SCORE_CHUNK)
        ).all()
        # End the read before computing (no transaction open while predicting) and before any
        # write: a write inside this deferred transaction would not hold the write lock.
        session.commit()
        if not rows:
            break
        scores, confidence, scored = _score_chunk(session, model, kind, rows, version, strategy, rng, names)
        write_many_in_short_transactions(session, _WRITE_SCORES, scored)
        checkpoint_wal(session)
        if heartbeat is not None:
            heartbeat()
        if strategy == "batch" or diverse:
            uncertain_ids.append(np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows)))
            uncertain_scores.append(scores)
        total += len(rows)
        unsure += int((np.asarray(confidence) < UNSURE_BELOW).sum())
        last_id = rows[-1][0]
    if strategy == "batch" and total:
        _rank_batch_top(session, model, kind, np.concatenate(uncertain_ids), np.concatenate(uncertain_scores),
                        Z_labeled() if callable(Z_labeled) else Z_labeled)
        session.commit()
    elif diverse and total:
        _diverse_top(session, model, kind, np.concatenate(uncertain_ids), np.concatenate(uncertain_scores),
                     _picks_per_retrain(project), typical=typical, random_state=rng)
        session.commit()
    # Kept with the model, so the dashboard's "pool the model is unsure of" is a lookup.
    scored_by = session.scalar(select(ModelVersion).where(ModelVersion.project_id == project.id,
                                                          ModelVersion.version == version))
    if scored_by is not None:
        scored_by.metrics = {**scored_by.metrics, "pool_scored": total, "pool_unsure": unsure}
        session.commit()
    return total


def labels_look_ambiguous(metrics: dict | None) -> bool:
    """Whether typical picks apply, from the scoring model's ``metrics``: its search predicted the
    labels it did not see less than ``TYPICAL_BELOW_KAPPA`` beyond chance (not when it could not
    cross-validate yet: too few labels to tell). Then the rows it is unsure of are mostly ones
    no model could call (two-class sentiment stays there); once it clears the bar (digits and
    intents do from the first retrains), its doubts point at what it has yet to learn, and
    outliers are worth asking about."""
    kappa = (metrics or {}).get("out_of_fold_kappa")
    return kappa is not None and kappa < TYPICAL_BELOW_KAPPA


def _score_chunk(session: Session, model: Any, kind: str, rows: list, version: int, strategy: str,
                 rng: np.random.Generator, names: list[str]) -> tuple[np.ndarray, np.ndarray, list[tuple]]:
    """Scores and confidences of a chunk of ``(id, features, data)`` rows, and the score rows to write."""
    X = model_inputs(kind, [(data or {}, raw) for _, raw, data in rows])
    stored = stores_vectors(model)
    if stored:  # embeddings from the store: encoding the pool again would cost minutes
        X = from_store(session, model[0], [r[0] for r in rows], texts=X)
    estimator = model[-1] if stored else model
    if is_multilabel(estimator):
        pred_probs = estimator.predict_proba(X)
        predicted, confidence, top = predicted_sets(pred_probs, names)  # columns in the project's label order
        scores = multilabel_informativeness(pred_probs, strategy, random_state=rng)
    else:
        pred_probs, predicted, confidence = predict_with_confidence(estimator, X)
        scores = informativeness(pred_probs, strategy, random_state=rng)
        top = stored_probabilities(pred_probs, estimator.classes_)  # JSON text, written as is
    # tolist() turns numpy scalars into Python ones in C; per-row float()/str() cost a second per 200k rows.
    scored = list(zip(np.asarray(scores, dtype=float).tolist(), np.asarray(predicted).astype(str).tolist(),
                      np.asarray(confidence, dtype=float).tolist(), top, itertools.repeat(version, len(rows)),
                      [r[0] for r in rows]))
    return scores, confidence, scored


def _rank_batch_top(session: Session, model: Any, kind: str, ids: np.ndarray, scores: np.ndarray,
                    Z_labeled: Any) -> None:
    shortlist = top_k(scores, BATCH_SHORTLIST)
    short_ids = ids[shortlist].tolist()
    Z_short = _featurize_shortlist(session, model, kind, short_ids)
    order = rank_batch(Z_short, scores[shortlist], Z_labeled, n_instances=BATCH_SIZE, shortlist=len(short_ids))
    session.execute(update(Example), _banded(BATCH_BAND, short_ids, order))


def _featurize_shortlist(session: Session, model: Any, kind: str, ids: list[int]) -> Any:
    """Featurized rows of ``ids`` for ``model``; reads in a read-only transaction, ended before
    featurizing, so no lock is held while the batch is chosen. Call it with no transaction open."""
    if stores_vectors(model):
        return from_store(session, model[0], ids)
    read_in_own_transaction(session)
    inputs = read_inputs(session, ids, kind)
    session.commit()
    return model[:-1].transform(inputs)


def _diverse_top(session: Session, model: Any, kind: str, ids: np.ndarray, scores: np.ndarray, k: int, *,
                 typical: bool, random_state: np.random.Generator) -> None:
    """The next ``k`` picks, lifted into the batch band: ``diverse_top`` on a shortlist of the
    ``k * DIVERSE_SHORTLIST_FACTOR`` highest scores, weighed by typicality first if ``typical``."""
    n_short = k * DIVERSE_SHORTLIST_FACTOR
    if typical:
        shortlist, X_short, short_scores = _typical_shortlist(session, model, kind, ids, scores, n_short, random_state)
    else:
        shortlist = top_k(scores, n_short)
        X_short, short_scores = _featurize_shortlist(session, model, kind, ids[shortlist].tolist()), scores[shortlist]
    order = diverse_top(X_short, short_scores, k, random_state=random_state)
    session.execute(update(Example), _banded(BATCH_BAND, ids[shortlist].tolist(), order))


def _typical_shortlist(session: Session, model: Any, kind: str, ids: np.ndarray, scores: np.ndarray, n_short: int,
                       rng: np.random.Generator) -> tuple[np.ndarray, Any, np.ndarray]:
    """The ``n_short`` best of the top scores weighed by typicality, measured against a uniform
    sample of the pool: positions in ``ids``, their featurized rows, their weighed scores."""
    candidates = top_k(scores, min(n_short * TYPICAL_CANDIDATES_FACTOR, TYPICAL_CANDIDATES_MAX))
    sample = np.sort(rng.choice(len(ids), size=min(len(ids), TYPICAL_SAMPLE), replace=False))
    both = np.union1d(candidates, sample)  # featurized once, a row in both included
    X = _featurize_shortlist(session, model, kind, ids[both].tolist())
    X_candidates = X[np.searchsorted(both, candidates)]
    weighed = scores[candidates] * typicality(X_candidates, X[np.searchsorted(both, sample)],
                                              in_reference=np.isin(candidates, sample), unit_length=kind == "text",
                                              random_state=rng)
    best = top_k(weighed, n_short)
    return candidates[best], X_candidates[best], weighed[best]


def pool_not_scored_by(session: Session, project: Project, version: int) -> bool:
    """Whether some unlabeled example still waits for ``version``'s score (a run died re-scoring)."""
    stale = session.scalar(select(Example.id).where(
        Example.project_id == project.id, Example.needs_labels,
        or_(Example.scored_by_version.is_(None), Example.scored_by_version != version)).limit(1))
    session.commit()
    return stale is not None


def classes_to_discover(names: list[str], seen: Iterable[str], n_labels: int) -> list[str]:
    """The declared classes no label names yet, while fewer than ``DISCOVERY_LABELS_PER_CLASS``
    labels per declared class were given (a class the pool lacks must not hold the queue forever)."""
    if n_labels >= DISCOVERY_LABELS_PER_CLASS * len(names):
        return []
    seen = set(seen)
    return [name for name in names if name not in seen]


def discover_classes(session: Session, project: Project, seen: Iterable[str], labeled_ids: Sequence[int], *,
                     random_state: int = 0) -> list[str]:
    """While some declared class has no label, serve diverse picks away from the labeled examples
    (``labeled_ids``) above the model's order, until the next retrain: a model that knows only
    some classes makes uncertainty sampling serve the border between those, and the others are
    found late (on SNIPS, 0.31 accuracy at 40 labels against random sampling's 0.81).
    Returns the classes looked for; commits. Call it with no transaction open.
    """
    missing = classes_to_discover(label_names(project), seen, len(labeled_ids))
    if not missing or config(project).strategy == "random":
        return []
    apply_cold_start(session, project, random_state=random_state, labeled_ids=labeled_ids,
                     n_seeds=_picks_per_retrain(project))
    session.commit()
    return missing


def _picks_per_retrain(project: Project) -> int:
    """The labels until the next retrain (its threshold), within ``DIVERSE_MIN``-``DIVERSE_MAX``."""
    return min(max(config(project).retrain_threshold, DIVERSE_MIN), DIVERSE_MAX)


def apply_cold_start(session: Session, project: Project, *, random_state: int = 0, labeled_ids: Sequence[int] = (),
                     n_seeds: int = COLD_START_SEEDS) -> int:
    """Put typical examples of the regions no label covers (``cold_start_order``, continued from
    the ``labeled_ids`` examples if given) at the queue's top: before any model, and while classes
    are discovered.

    A ``random`` project keeps a random order: its queue is the baseline the others are measured
    against, and a chosen start would make it something else.

    Commits: the pool is read in read-only transactions, ended before fitting the pool's featurizer
    and before featurizing and seeding (seconds for a large pool), so no lock is held meanwhile.
    Call it with no transaction open; the caller commits the new priorities.
    """
    if config(project).strategy == "random" or not project.n_examples:  # an empty pool has nothing to order
        return 0
    featurizer = featurizer_for(session, project)
    session.commit()
    features = pool_featurizer(session, project, featurizer, random_state=random_state)  # fits outside any transaction
    read_in_own_transaction(session)
    ids = list(session.scalars(
        select(Example.id).where(Example.project_id == project.id, Example.needs_labels, Example.n_labels == 0)
    ))
    rng = np.random.default_rng(random_state)
    sample = sorted(rng.choice(ids, size=min(len(ids), COLD_START_SAMPLE), replace=False).tolist()) if ids else []
    # The labeled rows through the same fitted featurizer, read with the sample: their space is the sample's.
    # A sample of them at most: they only mark regions as covered (an import may bring 10^6 labels of one class).
    labeled = list(labeled_ids)
    if len(labeled) > COLD_START_LABELED_SAMPLE:
        labeled = rng.choice(labeled, size=COLD_START_LABELED_SAMPLE, replace=False).tolist()
    both = sample + labeled
    inputs = read_inputs(session, both, INPUT_KIND[featurizer])
    session.commit()  # before featurizing (which may encode and store embeddings) and before any write
    if not ids:
        return 0
    X = featurized(session, featurizer, features, both, inputs=inputs)
    X_labeled = X[len(sample):] if len(both) > len(sample) else None
    order = cold_start_order(X[:len(sample)], n_seeds=n_seeds, batch=_picks_per_retrain(project), X_labeled=X_labeled,
                             random_state=rng)
    session.execute(update(Example), _banded(COLD_START_BAND, sample, order))
    return len(order)
