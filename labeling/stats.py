"""Numbers for the project dashboard. Each is one indexed query (or a few), never a scan of
the whole pool per view."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select

from labeling.labels import kept_by_annotators
from labeling.models import Label, ModelVersion, Project, User
from labeling.snapshots import current_labels_query

UNSURE_BELOW = 0.6


def progress_by_label(session, project_id: int) -> dict[str, int]:
    return {value: n for value, n in session.execute(
        current_labels_query(project_id).with_only_columns(Label.value, func.count()).group_by(Label.value))}


def labels_per_day(session, project_id: int, *, now: datetime, days: int = 14) -> list[tuple[str, int]]:
    since = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    first_id = session.scalar(select(func.min(Label.id)).where(Label.project_id == project_id, Label.created_at >= since))
    counts: Counter[str] = Counter()
    if first_id is not None:
        # Label ids grow with time: the range scan on (project_id, id) starts at the window.
        for (created,) in session.execute(select(Label.created_at).where(
                Label.project_id == project_id, Label.id >= first_id, Label.value.is_not(None))):
            counts[created.date().isoformat()] += 1
    return [((since + timedelta(days=i)).date().isoformat(), counts.get((since + timedelta(days=i)).date().isoformat(), 0))
            for i in range(days)]


def learning_curve(session, project_id: int) -> list[dict[str, Any]]:
    """Holdout accuracy and macro-F1 of each model version against the labels it was trained on,
    with the random-sampling baseline of the same run (``random_*``) where random picks allowed one."""
    points = []
    for version, n_labels, metrics, status in session.execute(
        select(ModelVersion.version, ModelVersion.n_labels, ModelVersion.metrics, ModelVersion.status)
        .where(ModelVersion.project_id == project_id).order_by(ModelVersion.version)):
        if "accuracy" in metrics:
            baseline = metrics.get("random_baseline") or {}
            points.append({"version": version, "n_labels": n_labels, "accuracy": metrics["accuracy"],
                           "n_holdout": metrics.get("n_holdout"),  # a score on 2 labels is not one on 200
                           "macro_f1": metrics["macro_f1"], "status": status,
                           "random_n_labels": baseline.get("n_labels"), "random_accuracy": baseline.get("accuracy")})
    return points


GAIN_MIN_POINTS = 3
# On a few holdout labels one answer moves accuracy by points: a fit to such scores is noise.
GAIN_MIN_HOLDOUT = 30


def gain_of_next(points: list[dict[str, Any]], *, labels: int = 100, window: int = 4) -> float | None:
    """Expected accuracy gain of the next ``labels`` labels: a log-linear fit to the last points
    of the learning curve (accuracy grows about linearly in the log of the labels). None until
    ``GAIN_MIN_POINTS`` versions were each judged on at least ``GAIN_MIN_HOLDOUT`` holdout labels."""
    recent = [p for p in points if p["n_labels"] > 0 and (p.get("n_holdout") or 0) >= GAIN_MIN_HOLDOUT][-window:]
    if len(recent) < GAIN_MIN_POINTS:
        return None
    x = np.log([p["n_labels"] for p in recent])
    y = np.array([p["accuracy"] for p in recent])
    if np.ptp(x) == 0:
        return None
    slope = np.polyfit(x, y, 1)[0]
    last = recent[-1]["n_labels"]
    gain = float(slope * (np.log(last + labels) - np.log(last)))
    return max(0.0, min(gain, 1.0 - recent[-1]["accuracy"]))


def unsure_share(session, project_id: int) -> float | None:
    """Share of the unlabeled pool the champion predicted with confidence below ``UNSURE_BELOW``
    when it last scored the pool (the retrain job counts it; a view never scans the pool)."""
    metrics = session.scalar(select(ModelVersion.metrics).join(Project, Project.champion_id == ModelVersion.id)
                             .where(Project.id == project_id))
    if not metrics or not metrics.get("pool_scored"):
        return None
    return metrics["pool_unsure"] / metrics["pool_scored"]


def throughput(session, project_id: int, *, now: datetime, hours: int = 24) -> list[dict[str, Any]]:
    """Labels per annotator in the last ``hours``, with their median time per label; counted as
    the annotators' table counts them (kept labels only), so the day is never more than the total."""
    since = now - timedelta(hours=hours)
    first_id = session.scalar(select(func.min(Label.id)).where(Label.project_id == project_id, Label.created_at >= since))
    if first_id is None:
        return []
    per: dict[str, list[int]] = {}
    for name, duration in session.execute(
        select(User.name, Label.duration_ms).join(User, User.id == Label.annotator_id)
        .where(Label.project_id == project_id, Label.id >= first_id, *kept_by_annotators())):
        per.setdefault(name, []).append(duration or 0)
    return [{"annotator": name, "labels": len(d), "median_seconds": round(float(np.median(d)) / 1000, 1)}
            for name, d in sorted(per.items(), key=lambda kv: -len(kv[1]))]
