"""The promotion rule on crafted holdout predictions."""

import numpy as np
import pytest

from active_learning.promotion import compare_on_holdout, decide

LABELS = ["a", "b", "c"]


def crafted(n_right_cand, n_right_champ, n=300, seed=0):
    """Holdout truth and two models' predictions with the given numbers of correct rows."""
    rng = np.random.default_rng(seed)
    y = rng.choice(LABELS, size=n)
    wrong = {"a": "b", "b": "c", "c": "a"}

    def predictions(n_right):
        right = np.zeros(n, dtype=bool)
        right[rng.choice(n, n_right, replace=False)] = True
        return np.where(right, y, [wrong[v] for v in y])

    return y, predictions(n_right_cand), predictions(n_right_champ)


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_a_significantly_worse_candidate_is_kept_out(metric):
    y, cand, champ = crafted(200, 260)
    comparison = compare_on_holdout(y, cand, champ, labels=LABELS, metric=metric)
    assert comparison.difference < 0 and comparison.significantly_worse
    promote, reason = decide(comparison, has_champion=True)
    assert not promote and "significantly worse" in reason and "paired bootstrap" in reason and "McNemar" in reason
    assert comparison.only_champion > comparison.only_candidate and comparison.p_mcnemar < 0.05


@pytest.mark.parametrize("metric", ["accuracy", "macro_f1"])
def test_a_tied_or_slightly_worse_candidate_with_more_labels_is_promoted(metric):
    for n_right in (255, 258, 260):  # 2 points below the champion to equal
        y, cand, champ = crafted(n_right, 260)
        comparison = compare_on_holdout(y, cand, champ, labels=LABELS, metric=metric)
        promote, reason = decide(comparison, has_champion=True)
        assert promote and not comparison.significantly_worse, reason


def test_the_comparison_is_seeded_and_first_or_holdout_less_models_are_promoted():
    y, cand, champ = crafted(240, 255)
    first = compare_on_holdout(y, cand, champ, labels=LABELS, random_state=3)
    assert compare_on_holdout(y, cand, champ, labels=LABELS, random_state=3) == first
    assert decide(None, has_champion=False)[0] and decide(None, has_champion=True)[0]
    with pytest.raises(ValueError, match="accuracy, macro_f1"):
        compare_on_holdout(y, cand, champ, labels=LABELS, metric="auc")


def test_a_few_holdout_rows_cannot_keep_a_candidate_out_on_the_bootstrap_alone():
    # 12 holdout rows; the champion alone gets 4 right, the candidate none: the percentile bootstrap
    # calls that worse, the exact McNemar test (P = 1/16) does not, and the candidate serves.
    y = np.array(["a", "b", "c"] * 4)
    champ = y.copy()
    cand = y.copy()
    cand[:4] = ["b", "c", "a", "b"]
    comparison = compare_on_holdout(y, cand, champ, labels=LABELS, metric="accuracy")
    assert comparison.p_worse < 0.05 and (comparison.only_candidate, comparison.only_champion) == (0, 4)
    assert abs(comparison.p_mcnemar - 1 / 16) < 1e-12
    promote, reason = decide(comparison, has_champion=True)
    assert promote and not comparison.significantly_worse, reason
    # Five such rows are enough (P = 1/32).
    cand[4] = "c"
    assert decide(compare_on_holdout(y, cand, champ, labels=LABELS, metric="accuracy"), has_champion=True)[0] is False


def test_macro_f1_averages_over_the_classes_the_holdout_or_a_model_names():
    from active_learning.evaluation import score_predictions

    labels = [str(d) for d in range(10)]
    assert score_predictions(["1", "2", "3"], ["1", "2", "3"], labels=labels)["macro_f1"] == 1.0
    # A class predicted but absent from the holdout is a mistake, and counts.
    assert score_predictions(["1", "2", "3"], ["1", "2", "4"], labels=labels)["macro_f1"] == 0.5
    assert score_predictions([], [], labels=labels) == {"accuracy": 0.0, "macro_f1": 0.0, "n_holdout": 0}
    # Paired: both models are averaged over the same classes, those of the rows or either model.
    worse = compare_on_holdout(["1", "2", "3"], ["1", "2", "4"], ["1", "2", "3"], labels=labels)
    assert (worse.candidate, worse.champion) == (0.5, 0.75)
