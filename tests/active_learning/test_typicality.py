"""Typicality: rows like many others score high, outliers low, duplicates do not take over."""

import numpy as np
from scipy import sparse

from active_learning.typicality import typicality


def _region_and_outliers(rng):
    region = rng.normal(size=(200, 60)) * 0.1 + np.eye(60)[0] * 3  # one tight region, off the origin
    outliers = rng.normal(size=(10, 60)) * 3
    return region, outliers


def test_rows_of_a_dense_region_are_more_typical_than_outliers():
    rng = np.random.default_rng(0)
    region, outliers = _region_and_outliers(rng)
    query = np.vstack([outliers, region[:10]])
    weights = typicality(query, region, in_reference=np.r_[np.zeros(10), np.ones(10)], random_state=0)
    assert weights.shape == (20,) and ((weights > 0) & (weights <= 1)).all()
    assert weights[:10].max() < weights[10:].min()
    # Sparse rows (TF-IDF) give the same order; the result replays for a seed; the caller's rows stay as they were.
    before = query.copy()
    same = typicality(sparse.csr_matrix(query), sparse.csr_matrix(region), in_reference=np.r_[np.zeros(10), np.ones(10)],
                      random_state=0)
    assert np.array_equal(same.argsort(), weights.argsort())
    assert np.array_equal(typicality(query, region, in_reference=np.r_[np.zeros(10), np.ones(10)], random_state=0), weights)
    small = typicality(query[:, :5], region[:, :5], unit_length=False)  # few columns: no SVD, rows used as they are
    assert np.array_equal(query, before) and small[:10].max() < small[10:].min()


def test_a_row_in_the_reference_is_not_its_own_neighbour():
    rng = np.random.default_rng(1)
    region = _region_and_outliers(rng)[0][:, :40]  # 40 columns: used as they are, no SVD fitted on the reference
    lonely = np.full((1, 40), 5.0)
    query = np.vstack([lonely, region[:10]])  # the region's rows set the floor, not the lonely row
    with_copy = np.vstack([region, lonely])
    flagged = typicality(query, with_copy, in_reference=np.r_[True, np.ones(10, dtype=bool)], unit_length=False)
    unflagged = typicality(query, with_copy, in_reference=np.r_[False, np.ones(10, dtype=bool)], unit_length=False)
    without_copy = typicality(query, region, in_reference=np.r_[False, np.ones(10, dtype=bool)], unit_length=False)
    # Its own copy at distance 0 makes it look more typical; flagged, it weighs as if the copy were not there.
    assert flagged[0] < unflagged[0]
    assert np.isclose(flagged[0], without_copy[0])


def test_duplicates_and_empty_rows_weigh_no_more_than_the_densest_rows():
    rng = np.random.default_rng(2)
    region, outliers = _region_and_outliers(rng)
    duplicates = np.repeat(region[:1], 30, axis=0)
    empty = np.zeros((30, 60))
    reference = np.vstack([region, duplicates, empty, outliers])
    weights = typicality(reference, reference, in_reference=np.ones(len(reference)), random_state=0)
    assert weights.max() == 1.0
    # A row of the region weighs at least 40% of a duplicate (unbounded, 10^-5): margin, not copies, decides.
    assert np.median(weights[:200]) >= 0.4 and weights[-10:].max() < np.median(weights[:200])


def test_typicality_of_too_few_rows_is_flat():
    assert typicality(np.ones((1, 3)), np.ones((1, 3))).tolist() == [1.0]
    assert typicality(np.ones((0, 3)), np.ones((3, 3))).shape == (0,)
