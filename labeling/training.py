"""Retraining: train a candidate on a frozen snapshot, compare it with the champion on the
holdout, promote it or not, and re-score the pool so the queue follows the new model.

``execute_run`` is a job, not a verb: it owns its transactions (one to claim the run, one to
store the model, short ones per re-scored chunk), so annotators are never locked out for long.
"""

from __future__ import annotations

import itertools
import logging
import secrets
import threading
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy import bindparam, func, literal, or_, select, update
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from active_learning.evaluation import evaluate, predict_with_confidence
from active_learning.featurize import INPUT_KIND, resolve_featurizer
from active_learning.label_errors import Consensus, LabelIssues, find_label_issues, weighted_consensus
from active_learning.models import dump_model, load_model, make_model
from active_learning.strategies import cold_start_order, informativeness, rank_batch
from labeling.db import checkpoint_wal, utcnow
from labeling.errors import Conflict, NotFound
from labeling.examples import count_new_examples
from labeling.models import Example, Label, ModelVersion, Project, RetrainRun, Snapshot
from labeling.projects import label_names
from labeling.runs import iso
from labeling.snapshots import create_snapshot, current_labels_query
from labeling.stats import UNSURE_BELOW

log = logging.getLogger(__name__)

SCORE_CHUNK = 5000
# Scores are written in short transactions: on SQLite a write holds the database's one write
# lock, and an annotator's submit waits behind it (docs/benchmarks.md, "serving while retraining").
WRITE_CHUNK = 250
# A pause after each one hands the lock to a writer queued on it: a released flock is not passed
# on, and the scorer, straight back for its next chunk, would often take it again first.
WRITE_PAUSE_SECONDS = 0.0002
HEARTBEAT_SECONDS = 30.0
STALE_BEATS = 4  # a run whose heartbeat is this many beats old is taken to be dead
BATCH_SIZE = 50  # examples the ranked batch orders at the top of the queue
COLD_START_SEEDS = 200
MIN_HOLDOUT_TO_REJECT = 30  # below this many holdout labels, the newer model is promoted
# Label-error detection: a more regularized model than the one that serves (it must not learn
# the noise it is looking for), and cleanlab's two pruning rules must agree; see docs/benchmarks.md.
DETECTION_C = 0.3
DETECTION_FILTER = "both"


@dataclass(frozen=True)
class TrainingSet:
    example_ids: list[int]
    inputs: list[Any]
    labels: list[str]  # gold: the majority of the current labels (see consensus_gold for several annotators)
    holdout: np.ndarray  # bool mask
    current: list[list[tuple[int, str]]]  # (label id, value) of each current label, per example
    random_pick: np.ndarray  # bool mask: served by a random pick, not chosen by the model
    voters: list[list[Any]]  # annotator id (None: imported) of each current label, per example


# --- inputs -------------------------------------------------------------------------------

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


def load_training_set(session: Session, project: Project, *, max_label_id: int, kind: str) -> TrainingSet:
    """Gold labels (majority of current labels) as of a snapshot, with inputs and holdout mask."""
    votes: dict[int, list[str]] = defaultdict(list)
    current: dict[int, list[tuple[int, str]]] = defaultdict(list)
    voters: dict[int, list[Any]] = defaultdict(list)
    for label_id, example_id, value, annotator_id in session.execute(
        current_labels_query(project.id, max_label_id).with_only_columns(Label.id, Label.example_id, Label.value,
                                                                          Label.annotator_id)
    ):
        votes[example_id].append(value)
        current[example_id].append((label_id, value))
        voters[example_id].append(annotator_id)
    ids = sorted(votes)
    rows: dict[int, tuple[dict[str, Any], bytes | None, bool, bool]] = {}
    for start in range(0, len(ids), SCORE_CHUNK):
        part = ids[start:start + SCORE_CHUNK]
        for eid, data, raw, holdout, random_pick in session.execute(
            select(Example.id, Example.data, Example.features, Example.in_holdout, Example.random_pick)
            .where(Example.id.in_(part))
        ):
            rows[eid] = (data, raw, holdout, random_pick)
    inputs = model_inputs(kind, [(rows[i][0], rows[i][1]) for i in ids])
    labels = [Counter(votes[i]).most_common(1)[0][0] for i in ids]
    return TrainingSet(ids, inputs, labels, np.array([rows[i][2] for i in ids], dtype=bool), [current[i] for i in ids],
                       np.array([rows[i][3] for i in ids], dtype=bool), [voters[i] for i in ids])


def _subset(inputs: Any, mask: np.ndarray) -> Any:
    if isinstance(inputs, np.ndarray):
        return inputs[mask]
    return [x for x, keep in zip(inputs, mask) if keep]


# --- the run ------------------------------------------------------------------------------

def stale_after(heartbeat_seconds: float) -> timedelta:
    return timedelta(seconds=heartbeat_seconds * STALE_BEATS)


def claim_run(session: Session, run_id: int, *, now: datetime, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> bool:
    """queued -> running (or take over a running run whose heartbeat stopped); True if claimed."""
    claimed = session.execute(
        update(RetrainRun)
        .where(RetrainRun.id == run_id, or_(
            RetrainRun.status == "queued",
            (RetrainRun.status == "running") & (RetrainRun.heartbeat_at < now - stale_after(heartbeat_seconds)),
        ))
        .values(status="running", started_at=now, heartbeat_at=now, attempts=RetrainRun.attempts + 1, error=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(claimed)


def stale_runs(session: Session, *, now: datetime, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> list[int]:
    """Runs left ``running`` by a process that died (no heartbeat for ``STALE_BEATS`` beats)."""
    return list(session.scalars(select(RetrainRun.id).where(
        RetrainRun.status == "running", RetrainRun.heartbeat_at < now - stale_after(heartbeat_seconds))))


def lost_runs(session: Session, *, now: datetime, queued_for: timedelta,
              heartbeat_seconds: float = HEARTBEAT_SECONDS) -> list[int]:
    """Runs to dispatch again: running with a stopped heartbeat, or queued and never claimed."""
    return stale_runs(session, now=now, heartbeat_seconds=heartbeat_seconds) + list(session.scalars(select(RetrainRun.id).where(
        RetrainRun.status == "queued", RetrainRun.created_at < now - queued_for).order_by(RetrainRun.id)))


def execute_run(session_factory: Callable[[], Session], run_id: int, *, threads: int = 1,
                clock: Callable[[], datetime] = utcnow, random_state: int = 0, public_url: str = "",
                heartbeat_seconds: float = HEARTBEAT_SECONDS, mlflow_tracking_uri: str = "") -> str | None:
    """Run a queued retrain run end to end; returns its final status, or None if not claimed.

    Safe to call twice: only the caller that claims the run executes it. With an MLflow tracking
    URI, the finished run is also logged there (after it is committed here).
    """
    with session_factory() as session:
        if not claim_run(session, run_id, now=clock(), heartbeat_seconds=heartbeat_seconds):
            session.rollback()
            return None
        session.commit()
    beating = threading.Event()
    heart = threading.Thread(target=_beat, args=(session_factory, run_id, clock, beating, heartbeat_seconds), daemon=True)
    heart.start()
    try:
        with threadpool_limits(limits=threads):
            result = _train_and_promote(session_factory, run_id, clock=clock, random_state=random_state)
    except Exception as exc:
        log.exception("retrain run %s failed", run_id)
        status, result = "failed", None
        error = f"{type(exc).__name__}: {exc}"[:2000] + "\n" + traceback.format_exc(limit=3)[-2000:]
    else:
        status, error = "succeeded", None
    finally:
        beating.set()
        heart.join()
    with session_factory() as session:
        run = session.get(RetrainRun, run_id)
        run.status, run.finished_at, run.result, run.error = status, clock(), result, error
        if result is None or "model_version" in result:
            _announce_model(session, run, result, public_url=public_url, now=clock())
        session.commit()
    if mlflow_tracking_uri:
        _track(session_factory, run_id, mlflow_tracking_uri)
    return status


def _track(session_factory: Callable[[], Session], run_id: int, tracking_uri: str) -> None:
    from labeling.tracking import track_run

    with session_factory() as session:
        mlflow_run_id = track_run(session, run_id, tracking_uri)
        if mlflow_run_id is not None:
            run = session.get(RetrainRun, run_id)
            run.result = {**(run.result or {}), "mlflow_run_id": mlflow_run_id}
            session.commit()


def _announce_model(session: Session, run: RetrainRun, result: dict[str, Any] | None, *, public_url: str,
                    now: datetime) -> None:
    from labeling.webhooks import enqueue_event

    project = session.get(Project, run.project_id)
    data: dict[str, Any] = {"project_id": project.id, "project": project.name, "run_id": run.id, "status": run.status}
    if result is not None:
        data.update(model_version=result["model_version"], promoted=result["promoted"], decision=result["decision"],
                    metrics=result["metrics"], champion_metrics=result["champion_metrics"],
                    n_labels=result["n_labels"], snapshot=result["snapshot"],
                    models_url=public_url.rstrip("/") + f"/api/v1/projects/{project.id}/models")
    else:
        data["error"] = (run.error or "").splitlines()[0] if run.error else None
    enqueue_event(session, project, "model.trained", data, now=now)


def _beat(session_factory: Callable[[], Session], run_id: int, clock: Callable[[], datetime],
          stop: threading.Event, seconds: float) -> None:
    """Keep the run's heartbeat fresh while it trains, so no other process takes it over."""
    while not stop.wait(seconds):
        try:
            with session_factory() as session:
                _heartbeat(session, run_id, clock())
                session.commit()
        except Exception:  # a missed beat is harmless; the next one retries
            log.warning("heartbeat of run %s failed", run_id, exc_info=True)


def _heartbeat(session: Session, run_id: int, now: datetime) -> None:
    session.execute(update(RetrainRun).where(RetrainRun.id == run_id).values(heartbeat_at=now))


def _train_and_promote(session_factory: Callable[[], Session], run_id: int, *, clock: Callable[[], datetime],
                       random_state: int) -> dict[str, Any]:
    # Three phases, so that no database transaction is open while the model trains:
    # read (snapshot, labels, champion) -> compute (fit, evaluate) -> write (model, promotion).
    with session_factory() as session:
        run = session.get(RetrainRun, run_id)
        project = session.get(Project, run.project_id)
        # A threshold run trains on the snapshot its webhook announced; others freeze one now.
        snapshot = session.get(Snapshot, run.snapshot_id) if run.snapshot_id else None
        if snapshot is None:
            snapshot = create_snapshot(session, project, now=clock(), reason="retrain")
            run.snapshot_id = snapshot.id
        featurizer = featurizer_for(session, project)
        kind = INPUT_KIND[featurizer]
        data = load_training_set(session, project, max_label_id=snapshot.max_label_id, kind=kind)
        champion = session.get(ModelVersion, project.champion_id) if project.champion_id else None
        session.commit()

        train = ~data.holdout
        y_train = [l for l, keep in zip(data.labels, train) if keep]
        if len(set(y_train)) < 2:
            apply_cold_start(session, project, random_state=random_state)
            session.commit()
            return {"skipped": "a model needs labels of at least two classes outside the holdout; "
                               "the queue uses a diverse cold-start order meanwhile",
                    "n_labels": len(data.labels), "snapshot": snapshot.number}
        # Out-of-fold probabilities first: they find suspect labels, and they let examples with
        # several annotators take a quality-weighted consensus as gold before anything trains.
        issues = find_label_issues(lambda: make_model(featurizer, random_state=random_state, C=DETECTION_C),
                                   data.inputs, data.labels, filter_by=DETECTION_FILTER, random_state=random_state)
        data, consensus = consensus_gold(data, issues)
        y_train = [l for l, keep in zip(data.labels, train) if keep]
        # Two fits: one on the training labels only, which is what the holdout can judge fairly,
        # and one on every label (holdout included), which serves if this version is promoted.
        candidate = make_model(featurizer, random_state=random_state)
        candidate.fit(_subset(data.inputs, train), y_train)
        serving = candidate
        if data.holdout.any():
            serving = make_model(featurizer, random_state=random_state).fit(data.inputs, data.labels)
        metric = project.settings.get("promotion_metric", "macro_f1")
        names = label_names(project)
        y_hold = [l for l, keep in zip(data.labels, data.holdout) if keep]
        X_hold = _subset(data.inputs, data.holdout)
        cand_metrics = evaluate(candidate, X_hold, y_hold, labels=names) if y_hold else {}
        champ_metrics: dict[str, Any] = {}
        if champion is not None and y_hold:
            try:
                champ_metrics = evaluate(unpack(load_model(champion.artifact, champion.artifact_sha256))[1],
                                         X_hold, y_hold, labels=names)
            except (ValueError, KeyError) as exc:  # an old model that cannot read today's inputs loses
                log.warning("champion v%s could not be evaluated: %s", champion.version, exc)
        promoted, reason = _decide(champion is not None, bool(y_hold), cand_metrics, champ_metrics, metric)
        baseline = random_baseline(featurizer, data, X_hold, y_hold, names, random_state=random_state)
        artifact, digest = dump_model({"serve": serving, "evaluate": candidate})

        version = (session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.project_id == project.id)) or 0) + 1
        model = ModelVersion(
            project_id=project.id, version=version, status="champion" if promoted else "rejected",
            trained_at=clock(), n_labels=len(data.labels), snapshot_id=snapshot.id, run_id=run_id,
            metrics={**cand_metrics, "featurizer": featurizer, "n_train": int(train.sum()),
                     "champion": champ_metrics or None, "decision": reason, "metric": metric,
                     "random_baseline": baseline,
                     "annotator_quality": consensus.annotator_quality if consensus else None},
            artifact=artifact, artifact_sha256=digest,
        )
        session.add(model)
        session.flush()
        if promoted:
            if champion is not None:
                champion.status = "candidate"
            project.champion_id = model.id
        run.model_version_id = model.id
        new_flags = record_flags(session, project, data, issues, run_id=run_id, now=clock())
        if consensus is not None:
            _store_gold(session, data)
        _heartbeat(session, run_id, clock())
        session.commit()
        scored = 0
        if promoted:
            scored = rescore_pool(session, project, serving, version, kind=kind, X_labeled=data.inputs,
                                  run_id=run_id, clock=clock, random_state=random_state)
        elif champion is not None and _pool_not_scored_by(session, project, champion.version):
            # An earlier run died while re-scoring: finish the champion's job.
            scored = rescore_pool(session, project, unpack(load_model(champion.artifact, champion.artifact_sha256))[0],
                                  champion.version, kind=kind, X_labeled=data.inputs,
                                  run_id=run_id, clock=clock, random_state=random_state)
        return {"model_version": version, "promoted": promoted, "decision": reason, "metrics": cand_metrics,
                "champion_metrics": champ_metrics or None, "n_labels": len(data.labels), "rescored": scored,
                "snapshot": snapshot.number, "new_flags": new_flags,
                **({"quality_check_skipped": issues.skipped} if issues.skipped else {})}


def consensus_gold(data: TrainingSet, issues: LabelIssues) -> tuple[TrainingSet, Consensus | None]:
    """Gold of the examples with several current labels: cleanlab's CROWDLAB consensus, each vote
    weighted by its annotator's measured quality (imported labels vote as "import"). Examples
    with one label keep it. Without such examples, or if the consensus cannot be computed, the
    plain majority stays."""
    multi = [i for i, voters in enumerate(data.voters) if len(voters) >= 2]
    if not multi or issues.pred_probs is None:
        return data, None
    annotations = [[("import" if a is None else a, value) for a, (_, value) in zip(voters, current)]
                   for voters, current in zip(data.voters, data.current)]
    try:
        consensus = weighted_consensus(annotations, issues.pred_probs, issues.classes)
    except Exception:  # a degenerate case for cleanlab: majority gold is still a gold
        log.warning("multi-annotator consensus failed; keeping the majority labels", exc_info=True)
        return data, None
    labels = list(data.labels)
    for i in multi:
        given = annotations[i]
        if consensus.labels[i] in {value for _, value in given}:
            labels[i] = consensus.labels[i]
        else:
            # Gold is one of the labels given (CROWDLAB may side with the model against every
            # annotator: that is a label-error flag's job): the one with most annotator quality.
            weight: Counter[str] = Counter()
            for key, value in given:
                weight[value] += consensus.annotator_quality.get(key, 0.0)
            labels[i] = weight.most_common(1)[0][0]
    return replace(data, labels=labels), consensus


def _store_gold(session: Session, data: TrainingSet) -> None:
    """Keep the consensus of multi-annotated examples, with how many labels it was taken over,
    so exports show it while those labels are still the current ones."""
    rows = [{"b_id": eid, "b_gold": label, "b_n": len(current)}
            for eid, label, current in zip(data.example_ids, data.labels, data.current) if len(current) >= 2]
    table = Example.__table__
    session.connection().execute(
        table.update().where(table.c.id == bindparam("b_id")).values(gold_label=bindparam("b_gold"), gold_n=bindparam("b_n")),
        rows)


def random_baseline(featurizer: str, data: TrainingSet, X_hold: Any, y_hold: list[str], names: list[str], *,
                    random_state: int) -> dict[str, Any] | None:
    """The learning curve's random-sampling expectation: the same model trained only on the labels
    that random picks chose, scored on the same holdout. ``n_labels`` counts the holdout too, like
    the model versions' own points. None until random picks cover two classes."""
    mask = data.random_pick & ~data.holdout
    y = [l for l, keep in zip(data.labels, mask) if keep]
    if not y_hold or len(set(y)) < 2:
        return None
    model = make_model(featurizer, random_state=random_state).fit(_subset(data.inputs, mask), y)
    scores = evaluate(model, X_hold, y_hold, labels=names)
    return {"n_labels": len(y) + len(y_hold), "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def record_flags(session: Session, project: Project, data: TrainingSet, issues: LabelIssues, *,
                 run_id: int | None, now: datetime) -> int:
    """Flag each current label the out-of-fold model disagrees with, and the minority labels of
    examples whose annotators disagree. A label is flagged once per reason. Returns new flags."""
    from labeling.models import LabelFlag

    wanted: dict[tuple[int, str], LabelFlag] = {}
    for index, score, suggested in zip(issues.indices, issues.scores, issues.suggested):
        for label_id, value in data.current[int(index)]:
            if value != suggested:
                wanted[(label_id, "model_disagrees")] = LabelFlag(
                    project_id=project.id, label_id=label_id, example_id=data.example_ids[int(index)], given=value,
                    suggested=str(suggested), score=float(score), reason="model_disagrees", status="open",
                    created_at=now, run_id=run_id)
    for i, labels in enumerate(data.current):
        if len({v for _, v in labels}) < 2:
            continue
        gold = data.labels[i]
        agreement = sum(v == gold for _, v in labels) / len(labels)
        for label_id, value in labels:
            if value != gold:
                wanted[(label_id, "annotators_disagree")] = LabelFlag(
                    project_id=project.id, label_id=label_id, example_id=data.example_ids[i], given=value,
                    suggested=gold, score=round(1.0 - agreement, 4), reason="annotators_disagree", status="open",
                    created_at=now, run_id=run_id)
    if not wanted:
        return 0
    known = set()
    ids = sorted({label_id for label_id, _ in wanted})
    for start in range(0, len(ids), SCORE_CHUNK):
        known.update(tuple(row) for row in session.execute(select(LabelFlag.label_id, LabelFlag.reason).where(
            LabelFlag.label_id.in_(ids[start:start + SCORE_CHUNK]))))
    new = [flag for key, flag in wanted.items() if key not in known]
    session.add_all(new)
    session.flush()
    return len(new)


def _pool_not_scored_by(session: Session, project: Project, version: int) -> bool:
    stale = session.scalar(select(Example.id).where(
        Example.project_id == project.id, Example.needs_labels,
        or_(Example.scored_by_version.is_(None), Example.scored_by_version != version)).limit(1))
    session.commit()
    return stale is not None


def _decide(has_champion: bool, has_holdout: bool, candidate: dict[str, Any], champion: dict[str, Any],
            metric: str) -> tuple[bool, str]:
    """Promote when the candidate is at least as good as the champion on the holdout."""
    if not has_champion:
        return True, "first model"
    if not has_holdout:
        return True, "no holdout labels yet: the model trained on more labels wins"
    if not champion:
        return True, "the champion could not be evaluated"
    scores = f"{metric} {candidate[metric]:.4f} vs champion {champion[metric]:.4f}"
    if candidate["n_holdout"] < MIN_HOLDOUT_TO_REJECT:
        # On a handful of examples the scores differ by chance: rejecting a model trained on more
        # labels would freeze the queue on an older one.
        return True, f"{scores}, but {candidate['n_holdout']} holdout labels are too few to judge: more labels win"
    return candidate[metric] >= champion[metric], scores


# --- scoring the pool ---------------------------------------------------------------------

def rescore_pool(session: Session, project: Project, model: Any, version: int, *, kind: str, X_labeled: Any = None,
                 run_id: int | None = None, clock: Callable[[], datetime] = utcnow, random_state: int = 0) -> int:
    """Store priority, predicted label, confidence and model version on every unlabeled example.

    Reads in chunks of ``SCORE_CHUNK`` and writes in chunks of ``WRITE_CHUNK`` with a commit
    after each, so no lock is held for long. With the ``batch`` strategy, the top of the queue is
    then reordered by modAL's ranked batch on a shortlist. Returns the number of examples scored.
    """
    strategy = project.settings.get("strategy", "margin")
    rng = np.random.default_rng(random_state)
    last_id, total, unsure = 0, 0, 0
    uncertain_ids: list[np.ndarray] = []
    uncertain_scores: list[np.ndarray] = []
    # Read only what the featurizer needs: decoding every row's JSON costs as much as predicting.
    columns = (Example.id, Example.features, literal(None)) if kind == "vector" else (Example.id, literal(None), Example.data)
    while True:
        session.connection(execution_options={"read_only": True})  # a read must not hold the write lock
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
        X = model_inputs(kind, [(data or {}, raw) for _, raw, data in rows])
        pred_probs, predicted, confidence = predict_with_confidence(model, X)
        scores = informativeness(pred_probs, strategy, random_state=rng)
        # tolist() turns numpy scalars into Python ones in C; per-row float()/str() cost a second per 200k rows.
        scored = list(zip(np.asarray(scores, dtype=float).tolist(), np.asarray(predicted).astype(str).tolist(),
                          np.asarray(confidence, dtype=float).tolist(), itertools.repeat(version, len(rows)),
                          [r[0] for r in rows]))
        for start in range(0, len(scored), WRITE_CHUNK):
            _write_scores(session, scored[start:start + WRITE_CHUNK])
            session.commit()
            time.sleep(WRITE_PAUSE_SECONDS)
        checkpoint_wal(session)
        if run_id is not None:
            _heartbeat(session, run_id, clock())
            session.commit()
        if strategy == "batch":
            uncertain_ids.append(np.fromiter((r.id for r in rows), dtype=np.int64, count=len(rows)))
            uncertain_scores.append(scores)
        total += len(rows)
        unsure += int((np.asarray(confidence) < UNSURE_BELOW).sum())
        last_id = rows[-1][0]
    if strategy == "batch" and total:
        _rank_batch_top(session, project, model, kind, np.concatenate(uncertain_ids),
                        np.concatenate(uncertain_scores), X_labeled)
        session.commit()
    # Kept with the model, so the dashboard's "pool the model is unsure of" is a lookup.
    scored_by = session.scalar(select(ModelVersion).where(ModelVersion.project_id == project.id,
                                                          ModelVersion.version == version))
    if scored_by is not None:
        scored_by.metrics = {**scored_by.metrics, "pool_scored": total, "pool_unsure": unsure}
        session.commit()
    return total


def _write_scores(session: Session, rows: list[tuple[float, str, float, int, int]]) -> None:
    """Bulk-write (priority, predicted label, confidence, version, id) with the driver's executemany:
    SQLAlchemy's per-row parameter handling took longer than the database."""
    dialect = session.get_bind().dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = (f"UPDATE examples SET priority = {mark}, predicted_label = {mark}, confidence = {mark}, "
           f"scored_by_version = {mark} WHERE id = {mark}")
    cursor = session.connection().connection.cursor()
    try:
        cursor.executemany(sql, rows)
    finally:
        cursor.close()


def _rank_batch_top(session: Session, project: Project, model: Any, kind: str, ids: np.ndarray,
                    scores: np.ndarray, X_labeled: Any) -> None:
    from active_learning.strategies import top_k

    shortlist = top_k(scores, 2000)
    short_ids = ids[shortlist].tolist()
    rows = {r.id: r for r in session.execute(
        select(Example.id, Example.data, Example.features).where(Example.id.in_(short_ids)))}
    featurize = model[:-1]
    X_short = featurize.transform(model_inputs(kind, [(rows[i].data, rows[i].features) for i in short_ids]))
    X_lab = featurize.transform(X_labeled)
    order = rank_batch(X_short, scores[shortlist], X_lab, n_instances=BATCH_SIZE, shortlist=len(short_ids))
    n = len(order)
    session.execute(update(Example), [
        {"id": short_ids[int(i)], "priority": 1.0 + (n - rank) / n} for rank, i in enumerate(order)
    ])


def apply_cold_start(session: Session, project: Project, *, random_state: int = 0) -> int:
    """Before any model: put a diverse set of examples (k-means++ seeding) at the queue's top."""
    featurizer = featurizer_for(session, project)
    kind = INPUT_KIND[featurizer]
    ids = list(session.scalars(
        select(Example.id).where(Example.project_id == project.id, Example.needs_labels, Example.n_labels == 0)
    ))
    if not ids:
        return 0
    rng = np.random.default_rng(random_state)
    sample = sorted(rng.choice(ids, size=min(len(ids), 20000), replace=False).tolist())
    rows = {}
    for start in range(0, len(sample), SCORE_CHUNK):
        part = sample[start:start + SCORE_CHUNK]
        rows.update({r.id: r for r in session.execute(
            select(Example.id, Example.data, Example.features).where(Example.id.in_(part)))})
    X = make_model(featurizer)[:-1].fit_transform(model_inputs(kind, [(rows[i].data, rows[i].features) for i in sample]))
    order = cold_start_order(X, n_seeds=COLD_START_SEEDS, random_state=rng)
    n = len(order)
    session.execute(update(Example), [
        {"id": sample[int(i)], "priority": 2.0 + (n - rank) / n} for rank, i in enumerate(order)
    ])
    return n


# --- models -------------------------------------------------------------------------------

def list_models(session: Session, project_id: int, *, limit: int = 100, offset: int = 0) -> list[ModelVersion]:
    return list(session.scalars(
        select(ModelVersion).where(ModelVersion.project_id == project_id)
        .order_by(ModelVersion.version.desc()).limit(limit).offset(offset)
    ))


def model_as_dict(model: ModelVersion) -> dict[str, Any]:
    metrics = {k: v for k, v in model.metrics.items() if k in ("accuracy", "macro_f1", "n_holdout")}
    return {
        "version": model.version, "status": model.status, "trained_at": iso(model.trained_at),
        "n_labels": model.n_labels, "metrics": metrics, "snapshot": _snapshot_number(model),
        "details": {k: v for k, v in model.metrics.items() if k not in metrics},
    }


def _snapshot_number(model: ModelVersion) -> int | None:
    from sqlalchemy.orm import object_session

    from labeling.models import Snapshot

    session = object_session(model)
    if model.snapshot_id is None or session is None:
        return None
    return session.scalar(select(Snapshot.number).where(Snapshot.id == model.snapshot_id))


def unpack(stored: Any) -> tuple[Any, Any]:
    """``(serving model, evaluation model)`` of a stored artifact."""
    return stored["serve"], stored["evaluate"]


def load_champion(session: Session, project: Project) -> tuple[ModelVersion, Any]:
    """The champion version and its serving model (trained on every label of its snapshot)."""
    if project.champion_id is None:
        raise Conflict("no model has been trained for this project yet")
    model = session.get(ModelVersion, project.champion_id)
    if model is None:
        raise NotFound("the champion model is missing")
    return model, unpack(load_model(model.artifact, model.artifact_sha256))[0]


def predict(session: Session, project: Project, records: Any, *, enqueue_uncertain: bool = False,
            uncertain_below: float = 0.6, now: datetime) -> dict[str, Any]:
    """The champion's predictions for ``records``; optionally queue the unsure ones for labeling.

    Raises
    ------
    InvalidInput
        Records that are not objects with ``text`` or ``features`` (by 1-based position).
    Conflict
        No model has been trained yet.
    """
    from labeling.errors import InvalidInput, Problem
    from labeling.examples import features_to_bytes

    if not isinstance(records, list) or not records or len(records) > 10000:
        raise InvalidInput.one("examples must be a list of 1 to 10000 objects", field="examples")
    problems = [Problem("must be an object with text or features", field="examples", line=i)
                for i, r in enumerate(records, start=1)
                if not isinstance(r, dict) or (r.get("text") is None and r.get("features") is None)]
    if problems:
        raise InvalidInput("invalid examples", problems)
    version, model = load_champion(session, project)
    kind = INPUT_KIND[version.metrics.get("featurizer", "tfidf")]
    try:
        X = inputs_from_records(kind, records)
        pred_probs, predicted, confidence = predict_with_confidence(model, X)
    except (ValueError, TypeError) as exc:
        raise InvalidInput.one(f"the model cannot read these examples: {exc}", field="examples") from None
    classes = [str(c) for c in model.classes_]
    enqueued = 0
    if enqueue_uncertain:
        strategy = project.settings.get("strategy", "margin")
        scores = informativeness(pred_probs, strategy if strategy != "random" else "margin")
        for record, p, c, s in zip(records, predicted, confidence, scores):
            if c >= uncertain_below:
                continue
            external_id = str(record.get("external_id") or f"predict-{secrets.token_hex(8)}")
            exists = session.scalar(select(Example.id).where(Example.project_id == project.id,
                                                             Example.external_id == external_id))
            if exists is not None:
                continue
            data = {k: record[k] for k in ("text", "image", "meta") if record.get(k) is not None}
            session.add(Example(
                project_id=project.id, external_id=external_id, data=data,
                features=features_to_bytes(record["features"]) if record.get("features") is not None else None,
                priority=float(s) + 1.0, random_key=float(np.random.default_rng().random()),
                scored_by_version=version.version, predicted_label=str(p),
                confidence=float(c), created_at=now,
            ))
            enqueued += 1
        session.flush()
        count_new_examples(session, project.id, enqueued)
    return {
        "model_version": version.version,
        "predictions": [
            {"label": str(p), "confidence": round(float(c), 6),
             "probabilities": {cls: round(float(v), 6) for cls, v in zip(classes, row)}}
            for p, c, row in zip(predicted, confidence, pred_probs)
        ],
        "enqueued": enqueued,
    }
