"""Whether a candidate model replaces the champion: a paired bootstrap on the shared holdout,
checked by an exact McNemar test.

A candidate trained on more labels should serve unless the holdout shows, with confidence, that
it is worse: rejecting it on a difference of a point or two (chance, on a few hundred holdout
labels) freezes the queue on an older model for thousands of labels.

The bootstrap judges the project's metric (macro-F1 by default), but its percentile interval is
too narrow on a few dozen rows: on movie snippets it kept out four candidates in a row, trained on
up to 450 labels, on 27-44 holdout rows (P = 0.015-0.043). So a candidate is kept out only when the
exact McNemar test agrees: among the holdout rows exactly one of the two models gets right, the
champion's are more than chance allows (one-sided binomial test at the same level). It is exact at
any size, and needs at least five such rows, all the champion's, to say "worse".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from active_learning.evaluation import judged_labels

METRICS = ("accuracy", "macro_f1")
ALPHA = 0.05  # the candidate is kept out when it is worse with 95% confidence
N_RESAMPLES = 2000


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two models' predictions on the same holdout rows.

    ``difference`` is candidate minus champion on ``metric`` (higher is better); ``p_worse`` is the
    bootstrap probability that the candidate is *not* worse (the share of resamples where the
    difference is >= 0): a small value means the candidate is worse with confidence.
    ``only_candidate`` / ``only_champion`` count the rows that model alone gets right, and
    ``p_mcnemar`` is the exact one-sided McNemar p-value that the candidate is not worse.
    """

    metric: str
    candidate: float
    champion: float
    difference: float
    p_worse: float
    n: int
    only_candidate: int = 0
    only_champion: int = 0
    p_mcnemar: float = 1.0

    @property
    def significantly_worse(self) -> bool:
        return self.p_worse < ALPHA and self.p_mcnemar < ALPHA


def mcnemar_p(only_candidate: int, only_champion: int) -> float:
    """Exact one-sided McNemar test: the probability, were both models equally good, that the
    candidate alone gets ``only_candidate`` rows or fewer right out of the discordant ones."""
    from scipy.stats import binomtest

    discordant = only_candidate + only_champion
    if discordant == 0:
        return 1.0
    return float(binomtest(only_candidate, discordant, 0.5, alternative="less").pvalue)


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
    """Paired bootstrap of ``metric`` (``accuracy``, or ``macro_f1`` over the ``labels`` that the rows
    or either model name) for two models' predictions on the same holdout rows ``y``. Seeded: the
    same inputs give the same answer."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid ones are {', '.join(METRICS)}")
    y, cand, champ = (np.asarray(a, dtype=object).astype(str) for a in (y, candidate, champion))
    if not len(y) == len(cand) == len(champ):
        raise ValueError("y, candidate and champion must have the same length")
    labels = judged_labels([str(label) for label in labels], y, cand, champ)
    n = len(y)
    if n == 0:
        return Comparison(metric, 0.0, 0.0, 0.0, 1.0, 0)
    ones = np.ones((1, n))
    observed_cand = float(_scores(y, cand, ones, metric, labels)[0])
    observed_champ = float(_scores(y, champ, ones, metric, labels)[0])
    rng = np.random.default_rng(random_state)
    weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_resamples).astype(float)
    diffs = _scores(y, cand, weights, metric, labels) - _scores(y, champ, weights, metric, labels)
    only_cand, only_champ = int(np.sum((cand == y) & (champ != y))), int(np.sum((champ == y) & (cand != y)))
    return Comparison(metric, observed_cand, observed_champ, observed_cand - observed_champ,
                      float(np.mean(diffs >= 0)), n, only_cand, only_champ, mcnemar_p(only_cand, only_champ))


def decide(comparison: Comparison | None, *, has_champion: bool) -> tuple[bool, str]:
    """``(promote, reason)``: the first model is promoted; later ones unless significantly worse."""
    if not has_champion:
        return True, "first model"
    if comparison is None:
        return True, "no holdout to compare on: the model trained on more labels wins"
    c = comparison
    scores = (f"{c.metric} {c.candidate:.4f} vs champion {c.champion:.4f} on {c.n} holdout labels "
              f"(paired bootstrap, P(not worse) = {c.p_worse:.3f}; McNemar, right only by the candidate "
              f"{c.only_candidate} vs the champion {c.only_champion}, P = {c.p_mcnemar:.3f})")
    if c.significantly_worse:
        return False, f"{scores}: significantly worse, kept out"
    if c.difference < 0:
        return True, f"{scores}: not significantly worse, and trained on more labels: promoted"
    return True, f"{scores}: promoted"
