"""Noise-aware flags: planted errors are found at the precision asked for; clean labels are left alone."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.preprocessing import MaxAbsScaler

from active_learning.label_errors import MIN_EVIDENCE, estimate_noise, probable_errors
from active_learning.model_selection import choose_hyperparameters


def flipped_digits(fraction, seed=0):
    d = load_digits()
    rng = np.random.default_rng(seed)
    y = d.target.astype(str).copy()
    flip = rng.random(len(y)) < fraction
    for i in np.where(flip)[0]:
        y[i] = str(rng.choice([c for c in range(10) if str(c) != y[i]]))
    return MaxAbsScaler().fit_transform(d.data), y, flip


@pytest.mark.parametrize("fraction", [0.0, 0.1])
def test_flags_on_digits_are_precise_and_clean_labels_get_almost_none(fraction):
    X, y, flip = flipped_digits(fraction)
    search = choose_hyperparameters(X, y)
    issues = probable_errors(search.pred_probs, search.classes, y)
    flagged = set(issues.indices.tolist())
    if fraction == 0.0:
        assert len(flagged) <= 0.005 * len(y) and issues.noise.rate <= 0.02
        return
    planted = set(np.where(flip)[0].tolist())
    precision = len(flagged & planted) / len(flagged)
    recall = len(flagged & planted) / len(planted)
    assert precision >= 0.9 and recall >= 0.8
    assert abs(issues.noise.rate - flip.mean()) < 0.03
    assert list(issues.scores) == sorted(issues.scores, reverse=True) and min(issues.scores) >= 0.8
    assert all(s != y[i] for i, s in zip(issues.indices, issues.suggested))


def test_too_few_labels_raise_no_flag_and_say_why():
    X, y, _ = flipped_digits(0.2)
    search = choose_hyperparameters(X[:60], y[:60])
    issues = probable_errors(search.pred_probs, search.classes, y[:60])
    assert len(issues.indices) == 0 and "too few" in issues.skipped


def test_the_noise_estimate_tells_noise_from_a_calibrated_models_own_errors():
    # A calibrated model: the true class is drawn from its probabilities, confident or not.
    rng = np.random.default_rng(0)
    n = 3000
    top = rng.uniform(0.4, 0.999, n)
    pred_probs = np.column_stack([top, (1 - top) / 2, (1 - top) / 2])
    truth = np.array([rng.choice(3, p=row) for row in pred_probs])
    assert estimate_noise(pred_probs, truth).rate <= 0.01  # its own errors are not noise
    given = truth.copy()
    wrong = rng.random(n) < 0.15
    given[wrong] = (truth[wrong] + rng.integers(1, 3, wrong.sum())) % 3
    noise = estimate_noise(pred_probs, given)
    assert abs(noise.rate - 0.15) <= 0.03 and noise.evidence > MIN_EVIDENCE


@pytest.mark.parametrize("fraction", [0.1, 0.2])
def test_systematic_errors_are_found_through_a_noise_matrix(fraction):
    # Every wrong label of a digit goes to one fixed other digit (a confusion an annotator makes
    # again and again): a uniform noise model took these for hard examples (recall 0.2 and 0).
    d = load_digits()
    rng = np.random.default_rng(0)
    flip = rng.random(len(d.target)) < fraction
    noisy = np.where(flip, (d.target + 1 + d.target % 3) % 10, d.target).astype(str)
    search = choose_hyperparameters(MaxAbsScaler().fit_transform(d.data), noisy)
    issues = probable_errors(search.pred_probs, search.classes, noisy)
    planted = set(np.where(flip)[0].tolist())
    flagged = set(issues.indices.tolist())
    assert issues.noise.matrix is not None and abs(issues.noise.rate - fraction) < 0.04
    assert len(flagged & planted) / len(flagged) >= 0.9 and len(flagged & planted) / len(planted) >= 0.6
    right = [s == str(d.target[i]) for i, s in zip(issues.indices, issues.suggested) if i in planted]
    assert sum(right) / len(right) >= 0.9  # the suggestion is the digit the wrong label hides


def test_a_model_biased_against_a_class_does_not_make_clean_labels_look_wrong():
    # Calibrated probabilities with one class scaled down: its labels look surprising, but every
    # label is right; a noise matrix must not take the model's bias for the annotators' errors.
    rng = np.random.default_rng(0)
    p = np.exp(rng.normal(0, 2.5, (2000, 10)))
    p /= p.sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(10, p=row) for row in p])
    biased = p.copy()
    biased[:, 0] *= 0.25
    biased /= biased.sum(axis=1, keepdims=True)
    assert estimate_noise(biased, truth).matrix is None
    assert len(probable_errors(biased, np.arange(10).astype(str), truth.astype(str)).indices) == 0


def test_a_model_that_agrees_with_too_few_labels_judges_none_and_says_why():
    # A weak model on hard picks: hesitant where it is right (62%, a kappa near 0.24), sure of the other class where
    # it is wrong. Sharpened, its disagreements fit "30% of the labels are wrong" better than "the
    # model is weak", and every one of them would be flagged; every label here is right (movie
    # snippets in the loop: one retrain flagged 81 labels at precision 0.22).
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 600)
    model_right = rng.random(600) < 0.62
    p_truth = np.where(model_right, rng.uniform(0.55, 0.8, 600), 1 - rng.uniform(0.85, 0.97, 600))
    pred_probs = np.column_stack([np.where(truth == 0, p_truth, 1 - p_truth), np.where(truth == 1, p_truth, 1 - p_truth)])
    assert estimate_noise(pred_probs, truth).rate >= 0.25  # what the bar keeps from being believed
    issues = probable_errors(pred_probs, np.array(["neg", "pos"]), np.array(["neg", "pos"])[truth])
    assert len(issues.indices) == 0 and issues.noise is None
    assert "agrees with the labels too little" in issues.skipped and "kappa 0.2" in issues.skipped
    assert issues.model_too_weak


def test_the_kappa_bar_must_be_cleared_with_confidence_so_a_few_labels_agreeing_by_luck_do_not_judge():
    from active_learning.label_errors import MIN_KAPPA, kappa_with_bound

    # The same agreement (74% on two balanced classes, kappa 0.48) on 150 labels and on 2,000.
    def agreeing(n):
        given = np.arange(n) % 2
        predicted = given.copy()
        predicted[: int(round(0.26 * n))] ^= 1
        return given, predicted

    kappa_few, lowest_few = kappa_with_bound(*agreeing(150))
    kappa_many, lowest_many = kappa_with_bound(*agreeing(2000))
    assert abs(kappa_few - kappa_many) < 0.01 and kappa_few > MIN_KAPPA
    assert lowest_few < MIN_KAPPA < lowest_many
    # The lower bound: kappa less 1.645 standard errors, sqrt(po (1 - po) / n) / (1 - pe).
    assert abs(lowest_many - (kappa_many - 1.645 * np.sqrt(0.74 * 0.26 / 2000) / 0.5)) < 1e-3
    # A model that agrees with every label has nothing to be unsure about.
    assert kappa_with_bound(np.arange(40) % 4, np.arange(40) % 4) == (1.0, 1.0)
