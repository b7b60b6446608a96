"""Query strategies on seeded data, and the modAL functions the service relies on."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.linear_model import LogisticRegression

from active_learning.cold_start import cold_start_order
from active_learning.strategies import STRATEGIES, informativeness, rank_batch, top_k


def test_modal_functions_the_service_uses_still_work():
    # A release of modAL or scikit-learn that breaks these fails here, not in production.
    from modAL.batch import ranked_batch
    from modAL.uncertainty import (classifier_entropy, classifier_margin, classifier_uncertainty,
                                   margin_sampling, uncertainty_sampling)

    X, y = make_blobs(n_samples=200, centers=3, random_state=0)
    model = LogisticRegression(max_iter=500).fit(X[:60], y[:60])
    pool = X[60:]
    for measure in (classifier_uncertainty, classifier_margin, classifier_entropy):
        assert measure(model, pool).shape == (140,)
    assert len(uncertainty_sampling(model, pool, n_instances=5)[0]) == 5
    assert len(margin_sampling(model, pool, n_instances=5)[0]) == 5

    class Learner:
        X_training = X[:60]
        on_transformed = False

        def predict_proba(self, X_):
            return model.predict_proba(X_)

    order, _ = ranked_batch(Learner(), unlabeled=pool, uncertainty_scores=classifier_uncertainty(model, pool),
                            n_instances=10, metric="euclidean", n_jobs=1)
    assert len(set(order.tolist())) == 10


@pytest.mark.parametrize("strategy", ["uncertainty", "margin", "entropy"])
def test_each_strategy_ranks_the_most_uncertain_example_first(strategy):
    rng = np.random.default_rng(0)
    confident = rng.dirichlet([20, 1, 1], size=500)
    probs = np.vstack([confident[:250], [[0.34, 0.33, 0.33]], confident[250:]])
    scores = informativeness(probs, strategy)
    assert top_k(scores, 1)[0] == 250
    assert scores.min() >= 0 and scores.max() <= 1


def test_margin_and_confidence_disagree_where_they_should():
    probs = np.array([[0.5, 0.5, 0.0], [0.4, 0.3, 0.3]])
    assert informativeness(probs, "margin").argmax() == 0  # two labels tied
    assert informativeness(probs, "uncertainty").argmax() == 1  # least confident top label


def test_random_is_seeded_and_unknown_strategies_name_the_valid_ones():
    probs = np.full((10, 2), 0.5)
    assert np.array_equal(informativeness(probs, "random", random_state=1), informativeness(probs, "random", random_state=1))
    with pytest.raises(ValueError, match="valid ones are " + ", ".join(STRATEGIES)):
        informativeness(probs, "psychic")


def test_rank_batch_prefers_diverse_examples_among_the_uncertain():
    rng = np.random.default_rng(0)
    cluster = rng.normal(0, 0.01, size=(50, 2))  # 50 near-identical, all very uncertain
    far = np.array([[5.0, 5.0]])  # one different, a little less uncertain
    X = np.vstack([cluster, far])
    uncertainty = np.r_[np.full(50, 0.9), 0.85]
    order = rank_batch(X, uncertainty, X_labeled=np.array([[0.0, 0.0]]), n_instances=3, shortlist=51)
    assert 50 in order[:2]


def test_cold_start_covers_all_classes_faster_than_random():
    X, y = make_blobs(n_samples=[1500] + [40] * 7, centers=None, cluster_std=0.6, random_state=3)
    needed_seeded, needed_random = [], []
    for seed in range(5):
        order = cold_start_order(X, n_seeds=60, random_state=seed)
        needed_seeded.append(next(i + 1 for i in range(len(order)) if len(set(y[order[: i + 1]])) == 8))
        random_order = np.random.default_rng(seed).permutation(len(X))
        needed_random.append(next(i + 1 for i in range(len(X)) if len(set(y[random_order[: i + 1]])) == 8))
    assert np.mean(needed_seeded) < np.mean(needed_random)


def test_a_diverse_batch_takes_the_most_informative_row_of_each_region():
    from active_learning.strategies import diverse_top

    rng = np.random.default_rng(0)
    # Three tight regions; the first holds the ten most informative rows.
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = np.vstack([c + rng.normal(scale=0.1, size=(10, 2)) for c in centers])
    scores = np.concatenate([np.linspace(0.99, 0.9, 10), np.linspace(0.5, 0.4, 10), np.linspace(0.3, 0.2, 10)])
    picks = diverse_top(X, scores, 3, random_state=0)
    assert list(picks) == [0, 10, 20]  # plain top-3 would be 0, 1, 2: one region
    assert list(diverse_top(X, scores, 3, random_state=0)) == list(picks)
    assert len(diverse_top(X[:2], scores[:2], 5, random_state=0)) == 2


def test_picks_continued_from_labeled_rows_go_to_the_regions_no_label_covers():
    # Three regions of 300 rows; ten labeled rows, all in the first two.
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    X = np.vstack([c + rng.normal(size=(300, 2)) for c in centres])
    labeled = np.vstack([c + rng.normal(size=(5, 2)) for c in centres[:2]])
    for seed in range(3):
        continued = cold_start_order(X, n_seeds=3, batch=3, X_labeled=labeled, random_state=seed)
        fresh = cold_start_order(X, n_seeds=3, batch=3, random_state=seed)
        assert (continued >= 600).sum() >= 2 > (fresh >= 600).sum()  # fresh picks take one of each region
        assert len(set(continued.tolist())) == 3


def test_the_first_picks_are_typical_rows_of_the_main_regions_not_outliers():
    # Four regions of 300 rows, each with a few far-flung rows of its own: the first four picks
    # are one per region, each near its region's centre.
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    rows = [c + rng.normal(scale=1.0, size=(300, 2)) for c in centres]
    outliers = [c + rng.normal(scale=4.0, size=(15, 2)) for c in centres]
    X = np.vstack(rows + outliers)
    region = np.r_[np.repeat(np.arange(4), 300), np.repeat(np.arange(4), 15)]
    for seed in range(3):
        order = cold_start_order(X, n_seeds=40, batch=4, random_state=seed)
        assert sorted(region[order[:4]].tolist()) == [0, 1, 2, 3]
        assert np.linalg.norm(X[order[:4]] - centres[region[order[:4]]], axis=1).max() < 1.0
        assert len(order) == 40 and len(set(order.tolist())) == 40
    again = [cold_start_order(X, n_seeds=8, batch=4, random_state=0).tolist() for _ in range(2)]
    assert again[0] == again[1]  # seeded: replays exactly
