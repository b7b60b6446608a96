"""Training a multi-label project's model version: one-vs-rest logistic regressions on the
project's featurizer, C chosen by cross-validated micro-F1, judged on the holdout by micro-F1
(macro-F1 and subset accuracy recorded), promoted unless significantly worse than the champion,
then the pool re-scored by the project's multi-label strategy.

Reads what ``labeling.training`` read (the snapshot's gold sets, the featurized rows) and writes
the same kind of version; what differs is the model, its scores, its rule and its label check
(each label a yes/no question for the single-label check, on out-of-fold probabilities that
also read the rest of the set: ``judge_sets``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Callable

import numpy as np
from sqlalchemy.orm import Session

from active_learning.featurize import INPUT_KIND
from active_learning.models import assemble
from active_learning.label_errors import LabelIssues
from active_learning.multilabel import (choose_c, indicator, judge_sets, make_multilabel_classifier, micro_f1_difference,
                                        scores)
from labeling.champion import champion_predictions, rescore_by_champion
from labeling.features import featurized
from labeling.models import ModelVersion, RetrainRun
from labeling.projects import label_names
from labeling.quality import close_stale_flags, record_flags
from labeling.registry import next_version_number, pack
from labeling.rescoring import TOO_FEW_SETS, apply_cold_start, discover_classes, rescore_pool


def train_multilabel(session: Session, run: RetrainRun, read: Any, *, clock: Callable[[], datetime],
                     random_state: int, heartbeat: Callable[[Session], None], rescore_anyway: bool) -> dict[str, Any]:
    """Train, judge, store and (if promoted) serve a multi-label version; returns the run's result.
    ``read`` is ``labeling.training``'s read phase (project, snapshot, featurizer, data, champion)."""
    data, project = read.data, read.project
    names = label_names(project)
    Y = indicator([json.loads(v) for v in data.labels], names)
    train = ~data.holdout
    if train.sum() < 2 or not Y[train].any():
        apply_cold_start(session, project, random_state=random_state, labeled_ids=data.example_ids)
        session.commit()
        return {"skipped": TOO_FEW_SETS,
                "n_labels": len(data.labels), "snapshot": read.snapshot.number}
    Z = featurized(session, read.featurizer, read.features, data.example_ids, inputs=data.inputs)
    # C by cross-validation over every label (as single-label projects do): its out-of-fold
    # probabilities also judge every label.
    C, oof = choose_c(Z, Y, random_state=random_state)
    candidate = make_multilabel_classifier(C, random_state).fit(Z[train], Y[train])
    serving = make_multilabel_classifier(C, random_state).fit(Z, Y) if data.holdout.any() else candidate
    judged = _judge(read, Z, Y, candidate, random_state=random_state)
    issues = _label_check(read, Z, oof, Y, names, C, random_state=random_state)
    version = _write(session, run, read, candidate, serving, judged, C, issues, now=clock())
    heartbeat(session)
    session.commit()
    scored = _rescore(session, read, serving if judged["promoted"] else None, version, Z, heartbeat=heartbeat,
                      random_state=random_state, rescore_anyway=rescore_anyway)
    discovering = discover_classes(session, project, [n for n, chosen in zip(names, Y.any(axis=0)) if chosen],
                                   data.example_ids, random_state=random_state)
    return {"model_version": version.version, "promoted": judged["promoted"], "decision": judged["reason"],
            "metrics": judged["metrics"], "champion_metrics": judged["champion_metrics"] or None,
            "n_labels": len(data.labels), "rescored": scored, "snapshot": read.snapshot.number,
            "new_flags": version.metrics["label_check"]["new_flags"], "hyperparameters": {"C": C},
            **({"quality_check_skipped": issues.skipped} if issues.skipped else {}),
            **({"discovering": discovering} if discovering else {})}


def _label_check(read: Any, Z: Any, oof: np.ndarray | None, Y: np.ndarray, names: list[str], C: float, *,
                 random_state: int) -> LabelIssues:
    none = np.empty(0, dtype=int)
    if oof is None:
        return LabelIssues(none, np.empty(0), [], skipped="too few labels to cross-validate a label check")
    if not read.labels_changed:
        return LabelIssues(none, np.empty(0), [], skipped="no label changed since the last check")
    # Judged on probabilities that also read the rest of each set and the sets as classes (the
    # model's own out-of-fold probabilities missed most wrong decisions on correlated labels).
    return judge_sets(Z, Y, oof, names, C, random_state=random_state)


def _judge(read: Any, Z: Any, Y: np.ndarray, candidate: Any, *, random_state: int) -> dict[str, Any]:
    """Holdout scores of the candidate and the champion, and the promotion decision on micro-F1."""
    hold = read.data.holdout
    if not hold.any():
        first = read.champion is None
        return {"metrics": {}, "champion_metrics": {}, "promoted": True,
                "reason": "first model" if first else "no holdout to compare on: the model trained on more labels wins"}
    Y_hold = Y[hold]
    predicted = candidate.predict(Z[hold]).astype(int)
    metrics = scores(Y_hold, predicted)
    if read.champion is None:
        return {"metrics": metrics, "champion_metrics": {}, "promoted": True, "reason": "first model"}
    # On the inputs of the champion's own featurizer, as in single-label projects.
    champion_predicted = champion_predictions(read, Z[hold], predict=_chosen)
    if champion_predicted is None:  # it cannot read them: it loses
        return {"metrics": metrics, "champion_metrics": {}, "promoted": True,
                "reason": f"the champion v{read.champion.version} could not be judged on the holdout: promoted"}
    champion_metrics = scores(Y_hold, champion_predicted)
    if (unchanged := read.nothing_new()) is not None:
        return {"metrics": metrics, "champion_metrics": champion_metrics, "promoted": False, "reason": unchanged}
    difference, upper = micro_f1_difference(Y_hold, predicted, champion_predicted, random_state=random_state)
    said = (f"micro_f1 {metrics['micro_f1']:.4f} vs champion {champion_metrics['micro_f1']:.4f} on {len(Y_hold)} "
            f"holdout examples (paired bootstrap, 95% upper bound of the difference {upper:+.4f})")
    if upper < 0:
        return {"metrics": metrics, "champion_metrics": champion_metrics, "promoted": False,
                "reason": f"{said}: significantly worse, kept out"}
    verdict = "not significantly worse, and trained on more labels: promoted" if difference < 0 else "promoted"
    return {"metrics": metrics, "champion_metrics": champion_metrics, "promoted": True, "reason": f"{said}: {verdict}"}


def _chosen(classifier: Any, rows: Any) -> np.ndarray:
    """Each row's set as an indicator row: the labels at least 50% likely."""
    return (classifier.predict_proba(rows) >= 0.5).astype(int)


def _write(session: Session, run: RetrainRun, read: Any, candidate: Any, serving: Any, judged: dict[str, Any],
           C: float, issues: LabelIssues, *, now: datetime) -> ModelVersion:
    project, champion, data = read.project, read.champion, read.data
    artifact, digest = pack(assemble(read.features, serving), assemble(read.features, candidate))
    model = ModelVersion(
        project_id=project.id, version=next_version_number(session, project.id),
        status="champion" if judged["promoted"] else "rejected", trained_at=now, n_labels=len(data.labels),
        snapshot_id=read.snapshot.id, run_id=run.id,
        metrics={**judged["metrics"], "featurizer": read.featurizer, "pool": read.pool, "n_train": int((~data.holdout).sum()),
                 "champion": judged["champion_metrics"] or None, "decision": judged["reason"], "metric": "micro_f1",
                 "task": "multi_label", "hyperparameters": {"C": C},
                 "label_check": {"skipped": issues.skipped, "flagged": int(len(issues.indices)),
                                 "expected_precision": issues.expected_precision}},
        artifact=artifact, artifact_sha256=digest,
    )
    session.add(model)
    session.flush()
    if judged["promoted"]:
        if champion is not None:
            champion.status = "candidate"
        project.champion_id = model.id
    run.model_version_id = model.id
    close_stale_flags(session, project.id, now=now)
    new_flags = record_flags(session, project, data.example_ids, data.current, data.labels, issues, run_id=run.id,
                             now=now, judged_through=read.snapshot.max_label_id)
    model.metrics = {**model.metrics, "label_check": {**model.metrics["label_check"], "new_flags": new_flags}}
    return model


def _rescore(session: Session, read: Any, serving: Any, version: ModelVersion, Z: Any, *,
             heartbeat: Callable[[Session], None], random_state: int, rescore_anyway: bool) -> int:
    if serving is not None:
        return rescore_pool(session, read.project, assemble(read.features, serving), version.version,
                            kind=INPUT_KIND[read.featurizer], Z_labeled=Z, heartbeat=lambda: heartbeat(session),
                            random_state=random_state)
    # Kept out: the champion keeps serving, on its own featurizer's inputs (labeling/champion.py).
    return rescore_by_champion(session, read, rescore_anyway=rescore_anyway, heartbeat=lambda: heartbeat(session),
                               random_state=random_state)
