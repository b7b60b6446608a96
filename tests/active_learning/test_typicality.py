"""Typicality: rows like many others score high, outliers low."""

import numpy as np
from scipy import sparse

from active_learning.typicality import typicality


def test_rows_of_a_dense_region_are_more_typical_than_outliers():
    rng = np.random.default_rng(0)
    region = rng.normal(size=(200, 60)) * 0.1 + np.eye(60)[0] * 3  # one tight region, off the origin
    outliers = rng.normal(size=(10, 60)) * 3
    X = np.vstack([outliers, region])
    weights = typicality(X, 20, random_state=0)  # the outliers and ten rows of the region
    assert weights.shape == (20,) and weights.max() == 1.0 and (weights > 0).all()
    assert weights[:10].max() < weights[10:].min()
    # Sparse rows (TF-IDF) give the same order; the result replays for a seed.
    assert np.array_equal(typicality(sparse.csr_matrix(X), 20, random_state=0).argsort(), weights.argsort())
    assert np.array_equal(typicality(X, 20, random_state=0), weights)


def test_typicality_of_too_few_rows_is_flat():
    assert typicality(np.ones((1, 3)), 1).tolist() == [1.0]
    assert typicality(np.ones((3, 3)), 0).shape == (0,)
