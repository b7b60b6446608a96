"""Choosing a classifier's hyperparameters by cross-validation on the labels at hand.

The grid is small (regularization strength and class weighting of a logistic regression) and is
tried in a fixed order under a budget counted in fits, not seconds, so that a search replays
exactly for the same labels and seed. Candidates are compared by cross-validated log loss: a
proper scoring rule, smooth on a few dozen labels, and the one that keeps the out-of-fold
probabilities calibrated (label-error detection reads them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold

# Tried in this order; the first is the default when the labels are too few to search.
C_GRID = (1.0, 0.1, 10.0, 100.0)
CLASS_WEIGHTS = (None, "balanced")
DEFAULT = {"C": 1.0, "class_weight": None}
MAX_FOLDS = 5
MIN_PER_CLASS = 2  # stratified folds need two labels of every class


def make_classifier(*, C: float = 1.0, class_weight: str | None = None, random_state: int | None = 0) -> LogisticRegression:
    """The service's classifier, unfitted (input: featurized rows)."""
    return LogisticRegression(C=C, class_weight=class_weight, max_iter=2000, random_state=random_state)


def fit_budget(n_labels: int) -> int:
    """How many candidate settings to cross-validate for ``n_labels`` labels: the whole grid up
    to 20,000 labels, then fewer, so a retrain stays a few minutes at 100k labels."""
    grid = len(C_GRID) * len(CLASS_WEIGHTS)
    if n_labels <= 20_000:
        return grid
    if n_labels <= 100_000:
        return 4
    return 1


@dataclass(frozen=True)
class Search:
    """The outcome of :func:`choose_hyperparameters`.

    ``params`` are the chosen keyword arguments of :func:`make_classifier`; ``pred_probs`` are
    the chosen setting's out-of-fold probabilities, shape ``(n, n_classes)`` in the order of
    ``classes`` (None when the labels were too few to cross-validate); ``tried`` lists each
    setting with its mean log loss (lower is better).
    """

    params: dict[str, Any]
    classes: np.ndarray
    pred_probs: np.ndarray | None = None
    tried: list[dict[str, Any]] = field(default_factory=list)
    skipped: str | None = None

    def as_record(self) -> dict[str, Any]:
        return {"params": self.params, "tried": self.tried, "skipped": self.skipped}


def folds_for(y: np.ndarray, *, random_state: int) -> StratifiedKFold | None:
    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2 or counts.min() < MIN_PER_CLASS:
        return None
    return StratifiedKFold(n_splits=int(min(MAX_FOLDS, counts.min())), shuffle=True, random_state=random_state)


def out_of_fold(X: Any, y: np.ndarray, folds: StratifiedKFold, params: dict[str, Any], classes: np.ndarray, *,
                random_state: int) -> np.ndarray:
    """Out-of-fold probabilities of a classifier with ``params`` (columns in ``classes`` order)."""
    pred_probs = np.zeros((len(y), len(classes)))
    for train, test in folds.split(np.zeros(len(y)), y):
        model = make_classifier(**params, random_state=random_state).fit(X[train], y[train])
        columns = np.searchsorted(classes, model.classes_)
        pred_probs[np.ix_(test, columns)] = model.predict_proba(X[test])
    return pred_probs


def choose_hyperparameters(X: Any, y: Sequence[Any], *, random_state: int = 0, budget: int | None = None) -> Search:
    """Cross-validate the grid on featurized rows ``X`` (array or sparse, shape ``(n, d)``) and
    labels ``y``; keep the setting with the lowest out-of-fold log loss.

    Seeded by ``random_state`` (folds and solver); ``budget`` (default :func:`fit_budget`) is
    the number of settings tried, in grid order.
    """
    y = np.asarray(y)
    classes = np.unique(y)
    folds = folds_for(y, random_state=random_state)
    if folds is None:
        return Search(dict(DEFAULT), classes, skipped="too few labels per class to cross-validate")
    budget = fit_budget(len(y)) if budget is None else budget
    settings = [{"C": c, "class_weight": w} for w in CLASS_WEIGHTS for c in C_GRID][:max(1, budget)]
    best: tuple[float, dict[str, Any], np.ndarray] | None = None
    tried = []
    for params in settings:
        pred_probs = out_of_fold(X, y, folds, params, classes, random_state=random_state)
        clipped = np.clip(pred_probs, 1e-12, 1.0)
        loss = float(log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=classes))
        tried.append({**params, "log_loss": round(loss, 5)})
        if best is None or loss < best[0] - 1e-9:
            best = (loss, params, pred_probs)
    return Search(dict(best[1]), classes, best[2], tried)
