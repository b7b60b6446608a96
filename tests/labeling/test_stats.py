"""The dashboard's numbers that are computed, not counted."""

import pytest

from labeling.stats import GAIN_MIN_HOLDOUT, gain_of_next


def curve(n_holdout: int) -> list[dict]:
    return [{"n_labels": n, "accuracy": a, "n_holdout": n_holdout} for n, a in ((100, 0.70), (200, 0.76), (400, 0.82))]


def test_the_gain_of_the_next_labels_follows_the_log_of_the_labels():
    gain = gain_of_next(curve(GAIN_MIN_HOLDOUT))
    # accuracy rises 0.06 per doubling: 100 more labels after 400 are log2(500/400) of a doubling
    assert gain == pytest.approx(0.06 * 0.3219, abs=0.002)


@pytest.mark.parametrize("n_holdout", [2, 6, GAIN_MIN_HOLDOUT - 1, None])
def test_no_gain_is_claimed_from_scores_on_a_few_holdout_labels(n_holdout):
    assert gain_of_next(curve(n_holdout)) is None
