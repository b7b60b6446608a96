"""Whether a candidate model replaces the champion: a paired bootstrap on the shared holdout.

A candidate trained on more labels should serve unless the holdout shows, with confidence, that
it is worse: rejecting it on a difference of a point or two (chance, on a few hundred holdout
labels) freezes the queue on an older model for thousands of labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

METRICS = ("accuracy", "macro_f1")
ALPHA = 0.05  # the candidate is kept out when it is worse with 95% confidence
N_RESAMPLES = 2000


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two models' predictions on the same holdout rows.

    ``difference`` is candidate minus champion on ``metric`` (higher is better); ``p_worse`` is the
    bootstrap probability that the candidate is *not* worse (the share of resamples where the
    difference is >= 0): a small value means the candidate is worse with confidence.
    """

    metric: str
    candidate: float
    champion: float
    difference: float
    p_worse: float
    n: int

    @property
    def significantly_worse(self) -> bool:
        return self.p_worse < ALPHA


def _scores(y: np.ndarray, predicted: np.ndarray, weights: np.ndarray, metric: str, labels: Sequence[str]) -> np.ndarray:
    """``metric`` under each row of bootstrap ``weights`` (shape ``(B, n)``); returns shape ``(B,)``."""
    correct = (predicted == y).astype(float)
    if metric == "accuracy":
        return weights @ correct / weights.sum(axis=1)
    f1 = []
    for label in labels:
        tp = weights @ (correct * (y == label))
        both = weights @ ((predicted == label).astype(float) + (y == label))
        f1.append(np.divide(2 * tp, both, out=np.zeros_like(tp), where=both > 0))
    return np.mean(f1, axis=0)


def compare_on_holdout(y: Sequence[str], candidate: Sequence[str], champion: Sequence[str], *, labels: Sequence[str],
                       metric: str = "macro_f1", n_resamples: int = N_RESAMPLES,
                       random_state: int | np.random.Generator | None = 0) -> Comparison:
    """Paired bootstrap of ``metric`` (``accuracy`` or ``macro_f1`` over ``labels``) for two models'
    predictions on the same holdout rows ``y``. Seeded: the same inputs give the same answer."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid ones are {', '.join(METRICS)}")
    y, cand, champ = (np.asarray(a, dtype=object).astype(str) for a in (y, candidate, champion))
    if not len(y) == len(cand) == len(champ):
        raise ValueError("y, candidate and champion must have the same length")
    labels = [str(label) for label in labels]
    n = len(y)
    if n == 0:
        return Comparison(metric, 0.0, 0.0, 0.0, 1.0, 0)
    ones = np.ones((1, n))
    observed_cand = float(_scores(y, cand, ones, metric, labels)[0])
    observed_champ = float(_scores(y, champ, ones, metric, labels)[0])
    rng = np.random.default_rng(random_state)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)
    diffs = _scores(y, cand, weights, metric, labels) - _scores(y, champ, weights, metric, labels)
    return Comparison(metric, observed_cand, observed_champ, observed_cand - observed_champ,
                      float(np.mean(diffs >= 0)), n)


def decide(comparison: Comparison | None, *, has_champion: bool) -> tuple[bool, str]:
    """``(promote, reason)``: the first model is promoted; later ones unless significantly worse."""
    if not has_champion:
        return True, "first model"
    if comparison is None:
        return True, "no holdout to compare on: the model trained on more labels wins"
    c = comparison
    scores = (f"{c.metric} {c.candidate:.4f} vs champion {c.champion:.4f} on {c.n} holdout labels "
              f"(paired bootstrap, P(not worse) = {c.p_worse:.3f})")
    if c.significantly_worse:
        return False, f"{scores}: significantly worse, kept out"
    if c.difference < 0:
        return True, f"{scores}: not significantly worse, and trained on more labels: promoted"
    return True, f"{scores}: promoted"
