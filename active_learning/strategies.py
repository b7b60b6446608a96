"""Query strategies: which unlabeled examples teach the model most.

Scores are in ``[0, 1]`` and **higher means more informative** (served first). The measures
come from modAL (``modAL.uncertainty``, ``modAL.batch``); modAL's learners are not used since
their ``fit`` breaks on scikit-learn >= 1.8 (see docs/design-notes.md).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from active_learning.names import STRATEGIES


class _Probabilities:
    """A stand-in classifier that answers ``predict_proba`` with probabilities already computed,
    so modAL's measures run without a second pass over the pool."""

    def __init__(self, pred_probs: np.ndarray, X_training: Any = None) -> None:
        self._pred_probs = pred_probs
        self.X_training = X_training
        self.on_transformed = False

    def predict_proba(self, X: Any, **_: Any) -> np.ndarray:
        return self._pred_probs if X is None or len(self._pred_probs) == _n_rows(X) else self._pred_probs[X]


def _n_rows(X: Any) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


# modAL is imported where it is used: it imports torch whenever torch is installed (seconds and
# hundreds of MB), which every web worker would pay at start without ever ranking a pool.


def _least_confidence(pred_probs: np.ndarray) -> np.ndarray:
    from modAL.uncertainty import classifier_uncertainty

    return classifier_uncertainty(_Probabilities(pred_probs), pred_probs)


def _margin(pred_probs: np.ndarray) -> np.ndarray:
    from modAL.uncertainty import classifier_margin

    # modAL's margin is small when uncertain; flip it so that higher is more informative.
    return 1.0 - classifier_margin(_Probabilities(pred_probs), pred_probs)


def _entropy(pred_probs: np.ndarray) -> np.ndarray:
    from modAL.uncertainty import classifier_entropy

    n_classes = pred_probs.shape[1]
    entropy = classifier_entropy(_Probabilities(pred_probs), pred_probs)
    return entropy / np.log(n_classes) if n_classes > 1 else entropy


MEASURES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "uncertainty": _least_confidence,
    "margin": _margin,
    "entropy": _entropy,
    "batch": _least_confidence,  # ranked batch reorders the top of this list, see rank_batch
}


def informativeness(pred_probs: np.ndarray, strategy: str, *, random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """Score each row of ``pred_probs`` (shape ``(n, n_classes)``) for ``strategy``.

    Returns
    -------
    ndarray of shape ``(n,)`` in ``[0, 1]``; higher is served first. ``"random"`` gives uniform
    random scores (seeded by ``random_state``).
    """
    if strategy == "random":
        return np.random.default_rng(random_state).random(len(pred_probs))
    measure = MEASURES.get(strategy)
    if measure is None:
        raise ValueError(f"unknown strategy {strategy!r}; valid ones are {', '.join(STRATEGIES)}")
    pred_probs = np.asarray(pred_probs, dtype=float)
    if pred_probs.ndim != 2 or pred_probs.shape[1] < 1:
        raise ValueError(f"pred_probs must have shape (n, n_classes), got {pred_probs.shape}")
    return np.clip(measure(pred_probs), 0.0, 1.0)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, best first (``argpartition``: milliseconds at 1M)."""
    k = min(k, len(scores))
    if k <= 0:
        return np.empty(0, dtype=int)
    part = np.argpartition(-scores, k - 1)[:k]
    return part[np.argsort(-scores[part], kind="stable")]


def rank_batch(X_pool: Any, uncertainty: np.ndarray, X_labeled: Any, *, n_instances: int = 50,
               shortlist: int = 2000) -> np.ndarray:
    """Diversity-aware order of the best ``n_instances`` pool rows (modAL's ranked batch).

    Runs on a shortlist of the most uncertain rows, so its cost stays bounded at any pool size.
    Returns pool indices, best first.
    """
    from modAL.batch import ranked_batch

    candidates = top_k(uncertainty, shortlist)
    if len(candidates) == 0:
        return candidates
    probe = _Probabilities(np.zeros((len(candidates), 1)), X_training=X_labeled)
    order, _scores = ranked_batch(probe, unlabeled=X_pool[candidates], uncertainty_scores=uncertainty[candidates],
                                  n_instances=min(n_instances, len(candidates)), metric="euclidean", n_jobs=1)
    return candidates[np.asarray(order, dtype=int)]


def diverse_top(X_short: Any, scores: np.ndarray, k: int, *,
                random_state: int | np.random.Generator | None = None) -> np.ndarray:
    """The next ``k`` picks from a shortlist of informative rows, spread over the feature space:
    k-means on the shortlist (``X_short``, shape ``(m, d)``, dense or sparse), then the most
    informative row (highest ``scores``) of each cluster, best first.

    Without it, the ``k`` labels between two retrains all come from one uncertain region (often
    near-duplicates), and teach the model what one of them would. This is diverse mini-batch
    active learning (Zhdanov, 2019) with the shortlist's scores as the choice within a cluster.
    Returns indices into the shortlist.
    """
    from sklearn.cluster import KMeans

    m = _n_rows(X_short)
    k = min(k, m)
    if k <= 1:
        return np.argsort(-scores, kind="stable")[:k]
    seed = random_state if isinstance(random_state, (int, np.integer)) or random_state is None else \
        int(random_state.integers(2**31 - 1))
    clusters = KMeans(n_clusters=k, n_init=1, random_state=seed).fit_predict(X_short)
    best: dict[int, int] = {}
    for i in np.argsort(-scores, kind="stable"):
        best.setdefault(int(clusters[i]), int(i))
    return np.array(sorted(best.values(), key=lambda i: -scores[i]), dtype=int)
