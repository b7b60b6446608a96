"""Choosing a classifier's hyperparameters by cross-validation on the labels at hand.

The grid is small (regularization strength and class weighting of a logistic regression) and is
tried in a fixed order under a budget counted in fits, not seconds, so that a search replays
exactly for the same labels and seed. Candidates are compared on the metric the holdout judges
models by (out of fold), within a tolerance broken by log loss: choosing by log loss alone picked
heavily regularized models on text that then lost to the champion on macro-F1 by several points.

The tolerance is one standard error of the best score (``sqrt(s (1 - s) / n)``, at least ``TIE``),
the "one-standard-error rule" of Hastie, Tibshirani and Friedman (Elements of Statistical Learning,
7.10) with log loss, not simplicity, breaking the tie. On a few hundred labels the settings'
out-of-fold macro-F1 differ by less than their noise, and the best of eight noisy scores was often
C = 0.1: probabilities all near the prior, whose predictions flip on small shifts (on movie
snippets such candidates lost to the champion by 10 points and were kept out for four retrains).
With the tolerance the lower log loss wins those ties: +0.3 to +0.8 points of test accuracy at
200-1,000 labels on movie snippets, the same on SNIPS (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, log_loss
from sklearn.model_selection import StratifiedKFold

# Tried in this order.
C_GRID = (1.0, 0.1, 10.0, 100.0)
CLASS_WEIGHTS = (None, "balanced")
# Balanced: with a handful of labels, unweighted fits lean on the intercept, and a class with one
# label is seldom predicted (accuracy of random 40-label draws: SNIPS 0.48 unweighted, 0.84
# balanced; digits 0.75 / 0.81; movie snippets 0.52 / 0.59, docs/benchmarks.md, session 13).
DEFAULT = {"C": 1.0, "class_weight": "balanced"}
MAX_FOLDS = 5
MIN_PER_CLASS = 2  # stratified folds need two labels of every class
TIE = 0.005  # the least tolerance: settings this close on the metric are always tied


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
    setting with its out-of-fold ``score`` on the metric (higher is better) and log loss (lower is
    better).
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


def tolerance(best_score: float, n_labels: int) -> float:
    """How far below ``best_score`` (a proportion-like metric on ``n_labels`` rows) a setting is
    still tied with it: one standard error, at least ``TIE``."""
    return max(TIE, float(np.sqrt(best_score * (1.0 - best_score) / max(n_labels, 1))))


def choose_hyperparameters(X: Any, y: Sequence[Any], *, metric: str = "macro_f1", random_state: int = 0,
                           budget: int | None = None) -> Search:
    """Cross-validate the grid on featurized rows ``X`` (array or sparse, shape ``(n, d)``) and
    labels ``y``; keep the setting with the best out-of-fold ``metric`` (``accuracy`` or
    ``macro_f1``), the lower log loss among settings within :func:`tolerance` of the best.

    Seeded by ``random_state`` (folds and solver); ``budget`` (default :func:`fit_budget`) is
    the number of settings tried, in grid order.
    """
    if metric not in ("accuracy", "macro_f1"):
        raise ValueError(f"unknown metric {metric!r}; valid ones are accuracy, macro_f1")
    y = np.asarray(y)
    classes = np.unique(y)
    folds = folds_for(y, random_state=random_state)
    if folds is None:
        return Search(dict(DEFAULT), classes, skipped="too few labels per class to cross-validate")
    budget = fit_budget(len(y)) if budget is None else budget
    settings = [{"C": c, "class_weight": w} for w in CLASS_WEIGHTS for c in C_GRID][:max(1, budget)]
    tried, probs = [], []
    for params in settings:
        pred_probs = out_of_fold(X, y, folds, params, classes, random_state=random_state)
        clipped = np.clip(pred_probs, 1e-12, 1.0)
        loss = float(log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=classes))
        predicted = classes[pred_probs.argmax(axis=1)]
        score = (float(np.mean(predicted == y)) if metric == "accuracy"
                 else float(f1_score(y, predicted, labels=classes, average="macro", zero_division=0)))
        tried.append({**params, "score": round(score, 5), "log_loss": round(loss, 5)})
        probs.append(pred_probs)
    top = max(t["score"] for t in tried)
    best = min((i for i, t in enumerate(tried) if t["score"] >= top - tolerance(top, len(y))),
               key=lambda i: (tried[i]["log_loss"], i))
    chosen = {k: tried[best][k] for k in ("C", "class_weight")}
    return Search(chosen, classes, probs[best], tried)
