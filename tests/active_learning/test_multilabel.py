"""Multi-label label checks: planted wrong decisions are found precisely; clean sets and a model
too weak to judge raise no flag."""

import json

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import load_digits
from sklearn.preprocessing import MaxAbsScaler

from active_learning.multilabel import check_probabilities, choose_c, judge_sets, probable_set_errors

NAMES = ["at_least_5", "even", "has_closed_loop", "prime"]
PROPERTIES = [{5, 6, 7, 8, 9}, {0, 2, 4, 6, 8}, {0, 6, 8, 9}, {2, 3, 5, 7}]


def digit_sets(fraction, seed=0):
    """scikit-learn's digits with four properties of the digit as the set (bench ``digits_multi``),
    one decision turned in a random ``fraction`` of the rows."""
    d = load_digits()
    Y = np.array([[int(t in p) for p in PROPERTIES] for t in d.target])
    rng = np.random.default_rng(seed)
    rows = np.where(rng.random(len(Y)) < fraction)[0]
    noisy = Y.copy()
    noisy[rows, rng.integers(0, 4, len(rows))] ^= 1
    return MaxAbsScaler().fit_transform(d.data), Y, noisy, rows


def check(Z, Y):
    C, oof = choose_c(Z, Y)
    return judge_sets(Z, Y, oof, NAMES, C)


@pytest.mark.parametrize("fraction", [0.0, 0.1])
def test_wrong_decisions_are_found_precisely_and_clean_sets_get_no_flag(fraction):
    Z, Y, noisy, planted = digit_sets(fraction)
    issues = check(Z, noisy)
    flagged = set(issues.indices.tolist())
    if fraction == 0.0:
        assert len(flagged) <= 0.005 * len(Y)
        return
    hits = flagged & set(planted.tolist())
    precision, recall = len(hits) / len(flagged), len(hits) / len(planted)
    assert precision >= 0.9 and recall >= 0.7  # F1 about 0.87 on this seed
    assert min(issues.scores) >= 0.8 and list(issues.scores) == sorted(issues.scores, reverse=True)
    truth = {i: [n for n, c in zip(NAMES, Y[i]) if c] for i in hits}
    restored = sum(json.loads(s) == truth[i] for i, s in zip(issues.indices, issues.suggested) if i in hits)
    assert restored >= 0.9 * len(hits)  # the suggestion turns the wrong decision back


def test_the_check_reads_the_rest_of_the_set_better_than_the_models_own_probabilities():
    Z, _, noisy, planted = digit_sets(0.1, seed=1)
    C, oof = choose_c(Z, noisy, random_state=1)
    own = set(probable_set_errors(oof, noisy, NAMES).indices.tolist()) & set(planted.tolist())
    found = set(probable_set_errors(check_probabilities(Z, noisy, C, random_state=1), noisy, NAMES).indices.tolist())
    assert len(found & set(planted.tolist())) >= 1.5 * len(own)


def test_a_model_that_cannot_read_the_labels_is_not_allowed_to_judge_them():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(300, 20))  # features that say nothing about the sets
    Y = (rng.random((300, 4)) < 0.3).astype(int)
    issues = check(Z, Y)
    assert len(issues.indices) == 0 and "agrees with the labels too little" in issues.skipped


def test_check_probabilities_take_sparse_features_and_a_label_nobody_chose():
    rng = np.random.default_rng(0)
    Z = sparse.random(60, 30, density=0.2, format="csr", random_state=0)
    Y = np.column_stack([rng.integers(0, 2, 60), np.zeros(60, dtype=int)])
    probs = check_probabilities(Z, Y, 1.0)
    assert probs.shape == (60, 2) and np.all((probs > 0) & (probs < 1))
    assert np.all(probs[:, 1] < 0.01)
    assert check_probabilities(Z[:10], Y[:10], 1.0) is None
