"""Holdout evaluation."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

METRICS = ("accuracy", "macro_f1")


def evaluate(model: Any, X: Any, y: Sequence[str], *, labels: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 (over the project's ``labels``) of ``model`` on ``(X, y)``; higher is better."""
    return score_predictions(y, model.predict(X), labels=labels)


def score_predictions(y: Sequence[str], predicted: Sequence[str], *, labels: Sequence[str]) -> dict[str, float]:
    """Accuracy and macro-F1 (over ``labels``) of ``predicted`` against ``y``; higher is better."""
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_f1": float(f1_score(y, predicted, labels=list(labels), average="macro", zero_division=0)),
        "n_holdout": int(len(y)),
    }


def predict_with_confidence(model: Any, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(pred_probs, predicted_labels, confidence)`` for a fitted classifier pipeline."""
    pred_probs = model.predict_proba(X)
    best = pred_probs.argmax(axis=1)
    return pred_probs, np.asarray(model.classes_)[best], pred_probs[np.arange(len(best)), best]
