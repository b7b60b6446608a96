"""The first picks, before a model can rank the pool (typical examples of the pool's main regions),
and the picks that look for a declared class no label names yet (far from every labeled example).

With a handful of labels, what a model learns depends on how representative they are. Uncertainty
needs a model, and diversity alone (k-means++ seeding, this module's first version) reaches for
outliers: odd phrasings, blurred digits. Typicality clustering (TypiClust; Hacohen, Dekel and
Weinshall, "Active Learning on a Budget", ICML 2022) picks, from each of the largest regions with
no label, its most typical row (the one closest on average to its neighbours). Offline, in a
replica of the service's loop (first picks, then margin with diverse batches, a retrain every 10
labels, 6 seeds; docs/benchmarks.md), accuracy at 10 labels went from 0.41 to 0.46 on SNIPS and
from 0.51 to 0.74 on digits, and 95% of the reference came at 45 labels instead of 53 on SNIPS
and 55 instead of 88 on digits.

Looking for a missing class is another matter: typical picks favour large dense regions, and a
class still missing after them is likely rare or unusual, so discovery keeps k-means++ seeding
(D² sampling) continued from the labeled rows, which reaches for what is far from every label.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import sparse
from sklearn.cluster import KMeans
from sklearn.decomposition import TruncatedSVD
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.neighbors import NearestNeighbors

DIMENSIONS = 50  # rows are clustered in this many SVD components (TF-IDF has 10^5 columns)
NEIGHBORS = 20  # typicality: mean distance to this many nearest rows of the same region
MAX_REGIONS = 500  # regions = chosen + wanted; bounded, for k-means' cost


def cold_start_order(X: Any, *, n_seeds: int = 200, batch: int = 10, sample: int = 20000,
                     random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """Up to ``n_seeds`` row indices of ``X`` to serve first, before any model exists, in order.

    In rounds, the first of ``batch`` picks (the labels before the first retrain), each next one
    twice as many: k-means splits the rows into as many regions as there are chosen rows plus this
    round's picks, and each pick is the most typical row of one of the largest regions that holds
    no chosen row. So the first picks cover the pool's main regions, and later ones finer ones.
    """
    rng = np.random.default_rng(random_state)
    n = X.shape[0]
    if n == 0 or n_seeds <= 0:
        return np.empty(0, dtype=int)
    pool = np.sort(rng.choice(n, size=min(n, sample), replace=False))
    rows = _reduced(X[pool], rng)
    chosen: list[int] = []
    want = max(1, batch)
    while len(chosen) < min(n_seeds, len(pool)):
        want = min(want, n_seeds - len(chosen), len(pool) - len(chosen))
        picks = _typical_of_uncovered(rows, chosen, want, rng)
        if not picks:
            break
        chosen += picks
        want *= 2
    return pool[np.asarray(chosen, dtype=int)]


def discovery_order(X: Any, X_labeled: Any, *, n_seeds: int = 10, sample: int = 20000,
                    random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """Up to ``n_seeds`` row indices of ``X`` far from the labeled rows ``X_labeled`` and from each
    other: k-means++ seeding (D² sampling) continued from the labeled rows, each row starting at
    its squared distance to the nearest labeled one. In order, first to last."""
    rng = np.random.default_rng(random_state)
    n = X.shape[0]
    if n == 0 or n_seeds <= 0:
        return np.empty(0, dtype=int)
    pool = rng.choice(n, size=min(n, sample), replace=False)
    Xs = X[pool]  # sparse stays sparse: distances come from euclidean_distances
    closest = euclidean_distances(Xs, X_labeled, squared=True).min(axis=1)
    chosen: list[int] = []
    for _ in range(min(n_seeds, len(pool))):
        total = closest.sum()
        if total <= 0:
            break
        nxt = int(rng.choice(len(pool), p=closest / total))
        chosen.append(nxt)
        closest = np.minimum(closest, euclidean_distances(Xs, Xs[nxt:nxt + 1], squared=True).ravel())
    return pool[np.asarray(chosen, dtype=int)]


def _reduced(X: Any, rng: np.random.Generator) -> np.ndarray:
    """Dense rows of at most ``DIMENSIONS`` columns, for k-means and neighbours."""
    components = min(DIMENSIONS, X.shape[1] - 1, X.shape[0] - 1)
    if X.shape[1] <= DIMENSIONS or components < 2:
        return X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=float)
    return TruncatedSVD(n_components=components, random_state=int(rng.integers(2**31 - 1))).fit_transform(X)


def _typical_of_uncovered(rows: np.ndarray, chosen: list[int], want: int, rng: np.random.Generator) -> list[int]:
    """One round: the most typical row of each of the ``want`` largest regions with no chosen row."""
    regions = min(len(chosen) + want, MAX_REGIONS, len(rows))
    region = KMeans(n_clusters=regions, n_init=1, random_state=int(rng.integers(2**31 - 1))).fit_predict(rows)
    covered = set(region[chosen].tolist())
    sizes = np.bincount(region, minlength=regions)
    picks: list[int] = []
    for r in np.argsort(-sizes, kind="stable"):
        if len(picks) == want or sizes[r] == 0:
            break
        if int(r) not in covered:
            picks.append(_most_typical(rows, np.flatnonzero(region == r)))
    return picks


def _most_typical(rows: np.ndarray, members: np.ndarray) -> int:
    """The member closest on average to its ``NEIGHBORS`` nearest fellow members."""
    k = min(NEIGHBORS, len(members) - 1)
    if k < 1:
        return int(members[0])
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(rows[members]).kneighbors(rows[members])
    return int(members[int(np.argmin(distances[:, 1:].mean(axis=1)))])
