"""Multi-label models and measures: one logistic regression per label (one-vs-rest) behind the
same featurizers, its scores on a holdout, and the queue's measures of how much a set teaches.

The queue's measures come from ``modAL.multilabel`` (Esuli and Sebastiani's MinConfidence and
AvgConfidence; its max-loss measures need an SVM's margins, which a logistic regression does not
have). Those functions read a classifier's ``predict_proba``
as each label decision's *confidence*; a logistic regression's probability of a label is not
that (0.02 is a confident "no"), so they are handed ``|2p - 1|``, the confidence of the yes/no
decision, through a stand-in classifier. modAL returns the chosen rows and their values; asking
for every row gives the score of each.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import KFold
from sklearn.multiclass import OneVsRestClassifier

C_GRID = (0.1, 1.0, 10.0, 100.0)
METRICS = ("micro_f1", "macro_f1", "subset_accuracy")


def indicator(sets: list[list[str]], names: list[str]) -> np.ndarray:
    """An ``(n, k)`` 0/1 matrix of label sets, columns in ``names``' order."""
    column = {name: j for j, name in enumerate(names)}
    Y = np.zeros((len(sets), len(names)), dtype=int)
    for i, chosen in enumerate(sets):
        for name in chosen:
            Y[i, column[name]] = 1
    return Y


def is_multilabel(estimator: Any) -> bool:
    """Whether a fitted classifier (or pipeline ending in one) predicts label sets."""
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    return bool(getattr(final, "multilabel_", False))


def make_multilabel_classifier(C: float = 1.0, random_state: int = 0) -> OneVsRestClassifier:
    # A label nobody chose yet is a constant column: OneVsRestClassifier predicts it constant.
    return OneVsRestClassifier(LogisticRegression(C=C, max_iter=2000, random_state=random_state))


def choose_c(Z: Any, Y: np.ndarray, *, random_state: int = 0) -> tuple[float, np.ndarray | None]:
    """The C of ``C_GRID`` with the best out-of-fold micro-F1 (3 folds), and that C's
    out-of-fold probabilities; ``(1.0, None)`` with too few rows to cross-validate."""
    n = Y.shape[0]
    if n < 15:
        return 1.0, None
    folds = list(KFold(3, shuffle=True, random_state=random_state).split(np.arange(n)))
    best: tuple[float, float, np.ndarray | None] = (-1.0, 1.0, None)
    for C in C_GRID:
        probs = np.zeros(Y.shape, dtype=float)
        for train, test in folds:
            model = make_multilabel_classifier(C, random_state).fit(Z[train], Y[train])
            probs[test] = model.predict_proba(Z[test])
        score = f1_score(Y, probs >= 0.5, average="micro", zero_division=0)
        if score > best[0]:
            best = (score, C, probs)
    return best[1], best[2]


def check_probabilities(Z: Any, Y: np.ndarray, C: float, *, random_state: int = 0) -> np.ndarray | None:
    """Out-of-fold per-label probabilities for the label check, shape ``(n, k)``: the mean of two
    views of the given sets that a label's own logistic regression lacks (``choose_c``'s folds and
    ``C``); ``None`` with too few rows to cross-validate.

    - each label from the features and the example's *other* given labels (stacked binary
      relevance): a set with one decision wrong is judged by the rest of it;
    - each label as the marginal of a multinomial logistic regression over the sets seen (label
      powerset): the sets' classes are often separable where a label, a union of them, is not.

    On digits with four properties (docs/benchmarks.md) the two together took the check's F1 on
    10% planted errors from 0.52 to 0.88 (either alone: 0.82 and 0.79).
    """
    n = Y.shape[0]
    if n < 15:
        return None
    folds = list(KFold(3, shuffle=True, random_state=random_state).split(np.arange(n)))
    stacked, powerset = np.zeros(Y.shape), np.zeros(Y.shape)
    sets, set_of_row = np.unique(Y, axis=0, return_inverse=True)
    set_of_row = set_of_row.ravel()
    for j in range(Y.shape[1]):
        features = _with_columns(Z, np.delete(Y, j, axis=1))
        for train, test in folds:
            stacked[test, j] = _binary_probability(features, Y[:, j], train, test, C, random_state)
    for train, test in folds:
        if len(np.unique(set_of_row[train])) < 2:
            powerset[test] = sets[set_of_row[train[0]]]
            continue
        model = LogisticRegression(C=C, max_iter=2000, random_state=random_state).fit(Z[train], set_of_row[train])
        powerset[test] = model.predict_proba(Z[test]) @ sets[model.classes_]
    return np.clip((stacked + powerset) / 2, 1e-6, 1 - 1e-6)


def judge_sets(Z: Any, Y: np.ndarray, oof: np.ndarray, names: list[str], C: float, *, random_state: int = 0) -> Any:
    """``probable_set_errors`` on ``check_probabilities``. A model whose own out-of-fold
    probabilities ``oof`` agree with the sets less than ``MIN_AGREEMENT`` is judged on them (and
    so skipped, saying why) without the costlier probabilities: on 3,000 GoEmotions texts they
    took 8 s against the C choice's 2 s, and raised the agreement only from 0.45 to 0.50."""
    if f1_score(Y, oof >= 0.5, average="micro", zero_division=0) < MIN_AGREEMENT:
        return probable_set_errors(oof, Y, names)
    return probable_set_errors(check_probabilities(Z, Y, C, random_state=random_state), Y, names)


def _with_columns(Z: Any, extra: np.ndarray) -> Any:
    if sparse.issparse(Z):
        return sparse.hstack([Z, sparse.csr_matrix(extra.astype(float))], format="csr")
    return np.hstack([np.asarray(Z), extra.astype(float)])


def _binary_probability(F: Any, y: np.ndarray, train: np.ndarray, test: np.ndarray, C: float,
                        random_state: int) -> np.ndarray:
    """The probability of ``y == 1`` on the ``test`` rows from a logistic regression fit on ``train``
    (a column constant there: that constant)."""
    if len(np.unique(y[train])) < 2:
        return np.full(len(test), float(y[train][0]))
    model = LogisticRegression(C=C, max_iter=2000, random_state=random_state).fit(F[train], y[train])
    return model.predict_proba(F[test])[:, 1]


def scores(Y_true: np.ndarray, Y_pred: np.ndarray) -> dict[str, float]:
    """Micro-F1, macro-F1 (over labels present in truth or prediction) and subset accuracy."""
    present = np.flatnonzero(Y_true.any(axis=0) | Y_pred.any(axis=0))
    macro = f1_score(Y_true[:, present], Y_pred[:, present], average="macro", zero_division=0) if len(present) else 0.0
    return {"micro_f1": round(float(f1_score(Y_true, Y_pred, average="micro", zero_division=0)), 6),
            "macro_f1": round(float(macro), 6),
            "subset_accuracy": round(float(np.mean((Y_true == Y_pred).all(axis=1))), 6),
            "n_holdout": int(Y_true.shape[0])}


def micro_f1_difference(Y_true: np.ndarray, candidate: np.ndarray, champion: np.ndarray, *,
                        random_state: int = 0, rounds: int = 400) -> tuple[float, float]:
    """The candidate's micro-F1 minus the champion's on the holdout, and the upper end of a 95%
    paired-bootstrap interval of that difference (below zero: significantly worse)."""
    def micro(rows: np.ndarray, Y_pred: np.ndarray) -> float:
        t, p = Y_true[rows], Y_pred[rows]
        tp = (t & p).sum()
        return 2 * tp / max(t.sum() + p.sum(), 1)

    everyone = np.arange(len(Y_true))
    observed = micro(everyone, candidate) - micro(everyone, champion)
    rng = np.random.default_rng(random_state)
    draws = [micro(rows, candidate) - micro(rows, champion)
             for rows in (rng.integers(0, len(Y_true), len(Y_true)) for _ in range(rounds))]
    return float(observed), float(np.quantile(draws, 0.975))


class _DecisionConfidence:
    """A stand-in classifier for modAL's multi-label measures: ``predict_proba`` answers each
    label decision's confidence ``|2p - 1|``, precomputed."""

    def __init__(self, probs: np.ndarray) -> None:
        self._probs = probs
        self.classes_ = np.arange(probs.shape[1])

    def predict_proba(self, X: Any, **_: Any) -> np.ndarray:
        return np.abs(2 * self._probs - 1)


def _every_value(query: Any, probs: np.ndarray) -> np.ndarray:
    """modAL's value for every row (asking for every row returns them all, in its order)."""
    n = probs.shape[0]
    chosen, values = query(_DecisionConfidence(probs), np.arange(n), n_instances=n)
    out = np.empty(n, dtype=float)
    out[np.asarray(chosen)] = np.asarray(values, dtype=float)
    return out


def informativeness(probs: np.ndarray, strategy: str, *, random_state: Any = None) -> np.ndarray:
    """Scores in ``[0, 1]``, higher = more informative, for per-label probabilities ``probs``."""
    from modAL.multilabel import avg_confidence, min_confidence

    if strategy == "random":
        return np.random.default_rng(random_state).random(probs.shape[0])
    if probs.shape[0] == 0:
        return np.zeros(0)
    if strategy == "min_confidence":  # the least sure label decision
        return 1.0 - _every_value(min_confidence, probs)
    if strategy == "avg_confidence":  # the least sure decisions on average
        return 1.0 - _every_value(avg_confidence, probs)
    raise ValueError(f"unknown multi-label strategy {strategy!r}")


def predicted_sets(probs: np.ndarray, names: list[str]) -> tuple[list[str], np.ndarray, list[str]]:
    """Per row: the predicted set as stored (a JSON array of names in ``names``' order), the
    confidence of the whole set (the product of each decision's probability), and the per-label
    probabilities as JSON text (the labeling page's suggestion)."""
    chosen = probs >= 0.5
    decided = np.where(chosen, probs, 1 - probs)
    confidence = np.prod(decided, axis=1) if probs.shape[1] else np.ones(probs.shape[0])
    sets = [json.dumps([n for n, c in zip(names, row) if c], ensure_ascii=False) for row in chosen]
    rounded = np.round(probs, 4).tolist()
    per_label = [json.dumps(dict(zip(names, row)), ensure_ascii=False) for row in rounded]
    return sets, confidence, per_label


# A label column needs this many examples with it (and without it) before its decisions are judged.
MIN_PER_SIDE = 5
# Below this out-of-fold micro-F1 against the given sets, a model's disagreement is mostly its own
# error, which the per-label noise estimate takes for the annotators' (GoEmotions in the loop, at
# about 0.45: 17-30 false flags per 100 labels of a perfect annotator). Digits with three rare
# labels and 10% of sets wrong sit at 0.80 and are judged well (docs/benchmarks.md). This bar is
# on the whole set; its yes/no columns are not held to the single-label kappa bar as well.
MIN_AGREEMENT = 0.7


def probable_set_errors(oof: np.ndarray, Y: np.ndarray, names: list[str], *, precision: float | None = None) -> Any:
    """Examples whose given set is wrong with probability at least ``precision``, most likely
    first, as ``label_errors.LabelIssues`` (``suggested``: the set with its doubted decisions
    turned, as stored).

    Each label is a yes/no question judged by the single-label check (its calibrated noise
    estimate and posterior, ``label_errors.probable_errors``) on its out-of-fold probabilities.
    A set's score is its most doubted decision's posterior (not ``1 - prod(1 - p_j)``: the
    columns' doubts are not independent, and adding them up flagged sets a weak model merely
    hesitated on).
    """
    from active_learning.label_errors import FLAGS_WITHDRAWN, PRECISION_TARGET, LabelIssues, probable_errors

    precision = PRECISION_TARGET if precision is None else precision
    n, k = Y.shape
    agreement = f1_score(Y, oof >= 0.5, average="micro", zero_division=0)
    if agreement < MIN_AGREEMENT:
        return LabelIssues(np.empty(0, dtype=int), np.empty(0), [],
                           skipped=f"the model agrees with the labels too little to judge them (out-of-fold micro-F1 "
                                   f"{agreement:.2f}, checks start at {MIN_AGREEMENT}; {FLAGS_WITHDRAWN})",
                           model_too_weak=True)
    wrong = np.zeros((n, k))
    judged = 0
    for j in range(k):
        positives = int(Y[:, j].sum())
        if min(positives, n - positives) < MIN_PER_SIDE:
            continue
        column = probable_errors(np.column_stack([1 - oof[:, j], oof[:, j]]), np.array(["no", "yes"]),
                                 np.where(Y[:, j] == 1, "yes", "no"), precision=precision, min_kappa=None)
        if column.posteriors is not None:
            wrong[:, j] = column.posteriors
            judged += 1
    none = np.empty(0, dtype=int)
    if not judged:
        return LabelIssues(none, np.empty(0), [], skipped="no label has enough examples with and without it to judge "
                                                          f"(at least {MIN_PER_SIDE} each, and enough labels)")
    posterior = wrong.max(axis=1)
    chosen = np.where(posterior >= precision)[0]
    chosen = chosen[np.argsort(-posterior[chosen], kind="stable")]
    turned = np.where(wrong[chosen] >= 0.5, 1 - Y[chosen], Y[chosen])
    suggested = [json.dumps([n for n, c in zip(names, row) if c], ensure_ascii=False) for row in turned]
    expected = float(posterior[chosen].mean()) if len(chosen) else None
    return LabelIssues(chosen, posterior[chosen], suggested, expected_precision=expected, posteriors=posterior)
