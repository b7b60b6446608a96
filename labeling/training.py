"""Training a model version: read a frozen snapshot, choose hyperparameters, find suspect labels,
fit, compare with the champion on the holdout, promote or not, re-score the pool.

Three phases, so that no database transaction is open while a model trains:
read (:func:`_read`) -> compute (:func:`_compute`) -> write (:func:`_write`). The run's
lifecycle around it (claim, heartbeat, outcome) is ``labeling.runs``.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Callable

import numpy as np
from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from active_learning.evaluation import score_predictions
from active_learning.names import INPUT_KIND
from active_learning.label_errors import Consensus, LabelIssues, out_of_fold_kappa, probable_errors, weighted_consensus
from active_learning.model_selection import Search, choose_hyperparameters, make_classifier
from active_learning.models import assemble
from active_learning.promotion import compare_on_holdout, decide
from labeling.champion import champion_inputs, champion_predictions, rescore_by_champion
from labeling.features import (featurized, featurizer_for, inputs_of_rows, pool_featurizer, pool_state, read_rows,
                               subset)
from labeling.models import Example, Label, ModelVersion, Project, RetrainRun, Snapshot
from labeling import tasks
from labeling.projects import config, label_names
from labeling.quality import close_stale_flags, record_flags
from labeling.registry import next_version_number, pack
from labeling.rescoring import TOO_FEW_LABELS, TOO_FEW_SETS, apply_cold_start, discover_classes, rescore_pool
from labeling.runs import STRATEGY_TRIGGER
from labeling.snapshots import create_snapshot, current_labels_query, store_golds
from labeling.training_multilabel import train_multilabel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSet:
    example_ids: list[int]
    inputs: list[Any]
    labels: list[str]  # gold: the majority of the current labels (see consensus_gold for several annotators)
    holdout: np.ndarray  # bool mask
    current: list[list[tuple[int, str]]]  # (label id, value) of each current label, per example
    random_pick: np.ndarray  # bool mask: served by a random pick, not chosen by the model
    voters: list[list[Any]]  # annotator id (None: imported) of each current label, per example


@dataclass
class _Inputs:
    """What the read phase hands to the compute phase."""

    project: Project
    snapshot: Snapshot
    featurizer: str
    features: Any  # the featurizer fitted on the pool (set after the read transaction ends)
    data: TrainingSet
    champion: ModelVersion | None
    labels_changed: bool  # since the last version was trained
    champion_featurizer: str = ""  # the champion's own (the project's setting may have changed since)
    champion_inputs: Any = None  # data's examples read for the champion's featurizer (None: unreadable)
    pool: list[int] | None = None  # the pool's state (labeling.features.pool_state) the featurizer fits
    champion_same_inputs: bool = False  # the champion was trained on these very labels, features and pool

    def nothing_new(self) -> str | None:
        """Why a candidate may not replace the champion whatever it scores: it was trained on the same
        labels and features (a "retrain now" with nothing changed), so it would be the same model."""
        if self.champion is None or not self.champion_same_inputs:
            return None
        return (f"trained on the same {len(self.data.labels)} labels and featurizer as the champion "
                f"v{self.champion.version}: nothing new to promote, the champion stays")


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
    rows = read_rows(session, ids, Example.in_holdout, Example.random_pick)  # one read of each example
    labels = [tasks.gold(project, votes[i])[0] for i in ids]  # the majority (per label, for sets)
    return TrainingSet(ids, inputs_of_rows(kind, rows, ids), labels, np.array([rows[i][3] for i in ids], dtype=bool),
                       [current[i] for i in ids], np.array([rows[i][4] for i in ids], dtype=bool),
                       [voters[i] for i in ids])


def train_and_promote(session_factory: Callable[[], Session], run_id: int, *, clock: Callable[[], datetime],
                      random_state: int, heartbeat: Callable[[Session], None]) -> dict[str, Any]:
    """Train, judge and store a model version for the run ``run_id``; returns the run's result."""
    with session_factory() as session:
        run = session.get(RetrainRun, run_id)
        rescore_anyway = run.trigger == STRATEGY_TRIGGER  # the queue must follow the new strategy
        read = _read(session, run, clock=clock, random_state=random_state)
        session.commit()
        data, project = read.data, read.project
        multi = tasks.is_multi_label(project)
        # Checked before the pool's featurizer is fitted: an empty pool has no vocabulary to fit.
        if multi and len(data.labels) < 2 or not multi and len(set(l for l, keep in zip(data.labels, ~data.holdout) if keep)) < 2:
            apply_cold_start(session, project, random_state=random_state, labeled_ids=data.example_ids)
            session.commit()
            return {"skipped": TOO_FEW_SETS if multi else TOO_FEW_LABELS,
                    "n_labels": len(data.labels), "snapshot": read.snapshot.number}
        read.features = pool_featurizer(session, read.project, read.featurizer, random_state=random_state)
        if multi:
            return train_multilabel(session, run, read, clock=clock, random_state=random_state, heartbeat=heartbeat,
                                    rescore_anyway=rescore_anyway)
        Z = featurized(session, read.featurizer, read.features, data.example_ids, inputs=data.inputs)
        computed = _compute(read, Z, random_state=random_state)
        version = _write(session, run, read, computed, now=clock())
        heartbeat(session)
        session.commit()
        scored = _rescore(session, read, computed, version, Z, heartbeat=lambda: heartbeat(session),
                          random_state=random_state, rescore_anyway=rescore_anyway)
        discovering = discover_classes(session, project, data.labels, data.example_ids, random_state=random_state)
        return {"model_version": version.version, "promoted": computed.promoted, "decision": computed.reason,
                "metrics": computed.metrics, "champion_metrics": computed.champion_metrics or None,
                "n_labels": len(computed.data.labels), "rescored": scored, "snapshot": read.snapshot.number,
                "new_flags": computed.new_flags, "hyperparameters": computed.search.params,
                **({"quality_check_skipped": computed.issues.skipped} if computed.issues.skipped else {}),
                **({"discovering": discovering} if discovering else {})}


def _read(session: Session, run: RetrainRun, *, clock: Callable[[], datetime], random_state: int) -> _Inputs:
    project = session.get(Project, run.project_id)
    # A threshold run trains on the snapshot its webhook announced; others freeze one now.
    snapshot = session.get(Snapshot, run.snapshot_id) if run.snapshot_id else None
    if snapshot is None:
        snapshot = create_snapshot(session, project, now=clock(), reason="retrain")
        run.snapshot_id = snapshot.id
    featurizer = featurizer_for(session, project)
    data = load_training_set(session, project, max_label_id=snapshot.max_label_id, kind=INPUT_KIND[featurizer])
    champion = session.get(ModelVersion, project.champion_id) if project.champion_id else None
    # The setting may have moved to another kind of input since the champion was trained: it is
    # judged, and re-scores the pool, on inputs of its own kind.
    own_featurizer, own_inputs = champion_inputs(session, champion, featurizer, data.example_ids, data.inputs)
    pool = pool_state(session, project.id)
    # Labels given between the request and the snapshot are this run's: they no longer count towards
    # the next threshold (its webhook's new_labels said 9 where 1 was new). Last, so the project
    # row is locked only until the caller commits, not while the training set is read.
    session.execute(update(Project).where(Project.id == project.id, Project.retrain_label_mark < snapshot.max_label_id)
                    .values(retrain_label_mark=snapshot.max_label_id).execution_options(synchronize_session=False))
    return _Inputs(project, snapshot, featurizer, None, data, champion,
                   labels_changed=_labels_changed_since_last_version(session, project, snapshot),
                   champion_featurizer=own_featurizer, champion_inputs=own_inputs,
                   pool=pool, champion_same_inputs=_same_as_champion(session, champion, snapshot, featurizer, pool))


def _same_as_champion(session: Session, champion: ModelVersion | None, snapshot: Snapshot, featurizer: str,
                      pool: list[int]) -> bool:
    if (champion is None or champion.snapshot_id is None or champion.metrics.get("featurizer") != featurizer
            or champion.metrics.get("pool") != pool):
        return False
    trained_on = session.get(Snapshot, champion.snapshot_id)
    return (trained_on.max_label_id, trained_on.n_labels) == (snapshot.max_label_id, snapshot.n_labels)


def _labels_changed_since_last_version(session: Session, project: Project, snapshot: Snapshot) -> bool:
    last = session.execute(
        select(Snapshot.max_label_id, Snapshot.n_labels).join(ModelVersion, ModelVersion.snapshot_id == Snapshot.id)
        .where(ModelVersion.project_id == project.id).order_by(ModelVersion.version.desc()).limit(1)).first()
    return last is None or tuple(last) != (snapshot.max_label_id, snapshot.n_labels)


@dataclass
class _Computed:
    data: TrainingSet  # with consensus gold
    search: Search
    issues: LabelIssues
    consensus: Consensus | None
    candidate: Any  # the classifier trained without the holdout: what the holdout judges
    serving: Any  # the classifier trained on every label
    metrics: dict[str, Any]
    champion_metrics: dict[str, Any]
    promoted: bool
    reason: str
    baseline: dict[str, Any] | None
    new_flags: int = 0


def _compute(read: _Inputs, Z: Any, *, random_state: int) -> _Computed:
    """Fit and judge, on featurized rows ``Z`` aligned with ``read.data``; no database here."""
    data = read.data
    # Hyperparameters by cross-validation; its out-of-fold probabilities also find suspect labels
    # and let examples with several annotators take a quality-weighted consensus as gold.
    metric = config(read.project).promotion_metric
    search = choose_hyperparameters(Z, data.labels, metric=metric, random_state=random_state)
    if search.pred_probs is None:
        issues = LabelIssues(np.empty(0, dtype=int), np.empty(0), [], skipped=search.skipped)
    elif not read.labels_changed:
        issues = LabelIssues(np.empty(0, dtype=int), np.empty(0), [], skipped="no label changed since the last check",
                             pred_probs=search.pred_probs, classes=search.classes)
    else:
        issues = probable_errors(search.pred_probs, search.classes, data.labels)
    data, consensus = consensus_gold(data, issues)
    train = ~data.holdout
    y = np.asarray(data.labels)

    def fit(mask: np.ndarray) -> Any:
        return make_classifier(**search.params, random_state=random_state).fit(subset(Z, mask), y[mask])

    # Two fits: one without the holdout, which the holdout can judge fairly, and one on every
    # label (holdout included), which serves if this version is promoted.
    candidate = fit(train)
    serving = fit(np.ones(len(y), dtype=bool)) if data.holdout.any() else candidate
    names = label_names(read.project)
    y_hold = y[data.holdout]
    metrics: dict[str, Any] = {}
    champion_metrics: dict[str, Any] = {}
    comparison = None
    if len(y_hold):
        predicted = candidate.predict(subset(Z, data.holdout))
        metrics = score_predictions(y_hold, predicted, labels=names)
        champion_predicted = champion_predictions(read, subset(Z, data.holdout))
        if champion_predicted is not None:
            champion_metrics = score_predictions(y_hold, champion_predicted, labels=names)
            comparison = compare_on_holdout(y_hold, predicted, champion_predicted, labels=names, metric=metric,
                                            random_state=random_state)
    promoted, reason = decide(comparison, has_champion=read.champion is not None)
    if (unchanged := read.nothing_new()) is not None:
        promoted, reason = False, unchanged
    baseline = random_baseline(Z, data, names, search.params, random_state=random_state)
    return _Computed(data, search, issues, consensus, candidate, serving, metrics, champion_metrics, promoted,
                     reason, baseline)


def _kappa_of_search(search: Search, labels: Any) -> float | None:
    kappa = out_of_fold_kappa(search.pred_probs, search.classes, labels)
    return None if kappa is None else round(kappa, 4)


def _write(session: Session, run: RetrainRun, read: _Inputs, computed: _Computed, *, now: datetime) -> ModelVersion:
    project, champion, data = read.project, read.champion, computed.data
    artifact, digest = pack(assemble(read.features, computed.serving), assemble(read.features, computed.candidate))
    metric = config(project).promotion_metric
    issues = computed.issues
    model = ModelVersion(
        project_id=project.id, version=next_version_number(session, project.id),
        status="champion" if computed.promoted else "rejected",
        trained_at=now, n_labels=len(data.labels), snapshot_id=read.snapshot.id, run_id=run.id,
        metrics={**computed.metrics, "featurizer": read.featurizer, "pool": read.pool, "n_train": int((~data.holdout).sum()),
                 "champion": computed.champion_metrics or None, "decision": computed.reason, "metric": metric,
                 "random_baseline": computed.baseline, "hyperparameters": computed.search.as_record(),
                 "out_of_fold_kappa": _kappa_of_search(computed.search, read.data.labels),
                 "label_check": {"skipped": issues.skipped, "flagged": int(len(issues.indices)),
                                 "noise_rate": issues.noise.rate if issues.noise else None,
                                 "expected_precision": issues.expected_precision},
                 "annotator_quality": computed.consensus.annotator_quality if computed.consensus else None},
        artifact=artifact, artifact_sha256=digest,
    )
    session.add(model)
    session.flush()
    if computed.promoted:
        if champion is not None:
            champion.status = "candidate"
        project.champion_id = model.id
    run.model_version_id = model.id
    close_stale_flags(session, project.id, now=now)
    computed.new_flags = record_flags(session, project, data.example_ids, data.current, data.labels, issues,
                                      run_id=run.id, now=now, judged_through=read.snapshot.max_label_id)
    if computed.consensus is not None:
        _store_gold(session, data, read.snapshot)
    return model


def _rescore(session: Session, read: _Inputs, computed: _Computed, version: ModelVersion, Z: Any, *,
             heartbeat: Callable[[], None], random_state: int, rescore_anyway: bool = False) -> int:
    if computed.promoted:
        return rescore_pool(session, read.project, assemble(read.features, computed.serving), version.version,
                            version_metrics=version.metrics, kind=INPUT_KIND[read.featurizer], Z_labeled=Z,
                            heartbeat=heartbeat, random_state=random_state)
    # Kept out: the champion keeps serving, and re-scores the pool if the strategy changed or an
    # earlier run died while re-scoring.
    return rescore_by_champion(session, read, rescore_anyway=rescore_anyway, heartbeat=heartbeat,
                               random_state=random_state)


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


def _store_gold(session: Session, data: TrainingSet, snapshot: Snapshot) -> None:
    """Keep the consensus of multi-annotated examples, with how many labels it was taken over,
    so exports show it while those labels are still the current ones: on the example for the
    current export, and with the snapshot for that snapshot's exports."""
    golds = [(eid, label, len(current))
             for eid, label, current in zip(data.example_ids, data.labels, data.current) if len(current) >= 2]
    store_golds(session, snapshot, golds)
    rows = [{"b_id": eid, "b_gold": label, "b_n": n} for eid, label, n in golds]
    table = Example.__table__
    session.connection().execute(
        table.update().where(table.c.id == bindparam("b_id")).values(gold_label=bindparam("b_gold"), gold_n=bindparam("b_n")),
        rows)


def random_baseline(Z: Any, data: TrainingSet, names: list[str], params: dict[str, Any], *,
                    random_state: int) -> dict[str, Any] | None:
    """The learning curve's random-sampling expectation: the same model trained only on the labels
    that random picks chose, scored on the same holdout. ``n_labels`` counts the holdout too, like
    the model versions' own points. None until random picks cover two classes."""
    mask = data.random_pick & ~data.holdout
    y = np.asarray(data.labels)
    y_hold = y[data.holdout]
    if not len(y_hold) or len(set(y[mask])) < 2:
        return None
    model = make_classifier(**params, random_state=random_state).fit(subset(Z, mask), y[mask])
    scores = score_predictions(y_hold, model.predict(subset(Z, data.holdout)), labels=names)
    return {"n_labels": int(mask.sum()) + len(y_hold), "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}
