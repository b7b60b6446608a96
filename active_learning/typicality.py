"""How typical a row is of the data around it: dense rows of few columns, and the inverse of the
mean distance to a row's nearest neighbours.

The cold start picks the most typical row of a region (``cold_start.py``); the picks between two
retrains weigh margin by typicality (information density; Settles and Craven, "An Analysis of
Active Learning Strategies for Sequence Labeling Tasks", EMNLP 2008), so that of two rows the
model is as unsure of, the one like many others is served before an outlier (measured in
docs/benchmarks.md, "Typical picks in the service", session 16).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.neighbors import NearestNeighbors

DIMENSIONS = 50  # rows are compared in this many SVD components (TF-IDF has 10^5 columns)
NEIGHBORS = 20  # typicality: mean distance to this many nearest rows
FLOOR = 0.5  # of the median mean distance: rows nearer their neighbours than this are all as typical


def reduced(X: Any, rng: np.random.Generator) -> np.ndarray:
    """Dense rows of at most ``DIMENSIONS`` columns, for k-means and neighbours."""
    svd = _svd_for(X, rng)
    return _dense(X) if svd is None else svd.fit_transform(X)


def typicality(X_query: Any, X_reference: Any, *, in_reference: np.ndarray | None = None, unit_length: bool = True,
               random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """Typicality in ``(0, 1]`` of each row of ``X_query`` among the rows of ``X_reference`` (a
    sample of the data; shapes ``(n, d)`` and ``(m, d)``, dense or sparse): the inverse of its mean
    distance to its ``NEIGHBORS`` nearest reference rows, on ``DIMENSIONS`` SVD components of the
    reference (rows of that many columns or fewer as they are), relative to a floor at ``FLOOR``
    times the query rows' median such distance (1 at or below it).

    ``in_reference`` marks the query rows that are also in the reference: their own copy is not
    their neighbour. ``unit_length``: compare directions (text: a long text is not far from a short
    one of the same kind); off for numeric columns, where the length is what makes an outlier.
    The floor keeps exact duplicates (and empty texts) from outweighing everything else.
    """
    n, m = X_query.shape[0], X_reference.shape[0]
    k = min(NEIGHBORS, m - 1)
    if n == 0 or k < 1:
        return np.ones(n)
    query, reference = _reduced_pair(X_query, X_reference, np.random.default_rng(random_state))
    if unit_length:
        query = query / (np.linalg.norm(query, axis=1, keepdims=True) + 1e-12)
        reference = reference / (np.linalg.norm(reference, axis=1, keepdims=True) + 1e-12)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(reference).kneighbors(query)
    # A row in the reference meets itself first (distance 0); the others drop their farthest.
    own = np.zeros(n, dtype=bool) if in_reference is None else np.asarray(in_reference, dtype=bool)
    mean = np.where(own, distances[:, 1:].mean(axis=1), distances[:, :-1].mean(axis=1))
    if not (mean > 0).any():
        return np.ones(n)
    floor = FLOOR * np.median(mean[mean > 0])
    return floor / np.maximum(mean, floor)


def _reduced_pair(X_query: Any, X_reference: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``reduced`` for both, the components fitted on the reference."""
    svd = _svd_for(X_reference, rng)
    if svd is None:
        return _dense(X_query), _dense(X_reference)
    svd.fit(X_reference)
    return svd.transform(X_query), svd.transform(X_reference)


def _svd_for(X: Any, rng: np.random.Generator) -> TruncatedSVD | None:
    """An unfitted SVD down to ``DIMENSIONS`` components for ``X``; None when ``X`` is narrow
    enough (or too small) to be used as it is."""
    components = min(DIMENSIONS, X.shape[1] - 1, X.shape[0] - 1)
    if X.shape[1] <= DIMENSIONS or components < 2:
        return None
    return TruncatedSVD(n_components=components, random_state=int(rng.integers(2**31 - 1)))


def _dense(X: Any) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.array(X, dtype=float)  # a copy: callers' rows stay theirs
