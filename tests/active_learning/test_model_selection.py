"""Hyperparameters chosen by seeded cross-validation."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import MaxAbsScaler

from active_learning.model_selection import C_GRID, CLASS_WEIGHTS, TIE, choose_hyperparameters, fit_budget, tolerance


def digits(n=300):
    d = load_digits()
    return MaxAbsScaler().fit_transform(d.data[:n]), d.target[:n].astype(str)


def test_the_search_replays_exactly_for_the_same_seed_and_covers_the_grid():
    X, y = digits()
    first = choose_hyperparameters(X, y, random_state=7)
    again = choose_hyperparameters(X, y, random_state=7)
    assert first.params == again.params and first.tried == again.tried
    np.testing.assert_array_equal(first.pred_probs, again.pred_probs)
    assert len(first.tried) == len(C_GRID) * len(CLASS_WEIGHTS)
    top = max(t["score"] for t in first.tried)
    best = min((t for t in first.tried if t["score"] >= top - tolerance(top, len(y))), key=lambda t: t["log_loss"])
    assert first.params == {"C": best["C"], "class_weight": best["class_weight"]}
    assert first.pred_probs.shape == (len(y), 10)
    assert np.allclose(first.pred_probs.sum(axis=1), 1.0)


def test_heavier_regularization_wins_when_labels_are_noisy():
    X, y = digits(600)
    rng = np.random.default_rng(0)
    noisy = y.copy()
    flip = rng.random(len(y)) < 0.3
    noisy[flip] = rng.choice(list("0123456789"), flip.sum())
    assert choose_hyperparameters(X, noisy).params["C"] <= choose_hyperparameters(X, y).params["C"]


def test_too_few_labels_fall_back_to_the_default_and_the_budget_shrinks_with_size():
    X, y = digits(12)
    search = choose_hyperparameters(X[:3], y[:3])
    assert search.params == {"C": 1.0, "class_weight": "balanced"} and search.pred_probs is None and search.skipped
    assert fit_budget(1_000) == 8 and fit_budget(50_000) < 8 and fit_budget(500_000) == 1
    assert len(choose_hyperparameters(*digits(200), budget=2).tried) == 2


def test_settings_within_one_standard_error_of_the_best_tie_and_the_lower_log_loss_wins():
    # 300 labels scored 0.75: one standard error is 0.025; 3,000,000 labels: the least tolerance.
    assert abs(tolerance(0.75, 300) - 0.025) < 1e-9 and tolerance(0.75, 3_000_000) == TIE
    X, y = digits(60)
    search = choose_hyperparameters(X, y, random_state=0)
    top = max(t["score"] for t in search.tried)
    tied = [t for t in search.tried if t["score"] >= top - tolerance(top, len(y))]
    chosen = next(t for t in search.tried if {"C": t["C"], "class_weight": t["class_weight"]} == search.params)
    assert chosen in tied and chosen["log_loss"] == min(t["log_loss"] for t in tied)
    # On 60 labels the best score (C = 1) loses to a setting within its noise with a lower log loss.
    assert chosen["score"] < top
