"""Finding labels that are probably wrong: a noise-aware posterior on out-of-fold probabilities
(the service's flags), cleanlab's filters (kept for comparison), and CROWDLAB consensus."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from cleanlab.filter import find_label_issues as cleanlab_find_label_issues
from cleanlab.rank import get_label_quality_scores
from scipy.stats import chi2
from sklearn.model_selection import StratifiedKFold, cross_val_predict

MIN_PER_CLASS = 2  # stratified folds need at least two examples of each class
FILTERS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")


@dataclass(frozen=True)
class LabelIssues:
    """Suspect rows, most suspicious first.

    ``indices`` index the input rows; ``scores`` are in ``[0, 1]`` (higher is more suspicious:
    one minus cleanlab's self-confidence label quality); ``suggested`` is the most likely class.
    ``skipped`` says why nothing was checked, when nothing was.
    """

    indices: np.ndarray
    scores: np.ndarray
    suggested: list[Any]
    skipped: str | None = None
    pred_probs: np.ndarray | None = None  # the out-of-fold probabilities behind the verdicts
    classes: np.ndarray | None = None  # their column order
    noise: "NoiseEstimate | None" = None  # the annotators' estimated error rate behind the verdicts
    expected_precision: float | None = None  # the share of these rows estimated to be real mistakes
    # Every row's posterior of being wrong (None when nothing was judged): an open flag whose label
    # has since fallen below WITHDRAW_BELOW is withdrawn.
    posteriors: np.ndarray | None = None
    # The model agrees with the labels too little to judge them: the open model flags an earlier
    # check raised lose their support, and are withdrawn (they reopen if a later check doubts again).
    model_too_weak: bool = False


@dataclass(frozen=True)
class Consensus:
    """Gold labels weighted by each annotator's quality: ``labels`` per example (in input order),
    ``annotator_quality`` in ``[0, 1]`` per annotator key."""

    labels: list[Any]
    annotator_quality: dict[Any, float]


def out_of_fold_probs(make_model: Callable[[], Any], X: Any, y: Sequence[Any], *, random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Predicted probabilities for each row from a model that did not see it.

    Folds: stratified, ``min(5, smallest class count)``. Returns ``(pred_probs, classes)`` with
    ``pred_probs`` of shape ``(n, n_classes)`` in the order of ``classes``.
    """
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    folds = StratifiedKFold(n_splits=int(min(5, counts.min())), shuffle=True, random_state=random_state)
    pred_probs = cross_val_predict(make_model(), X, y, cv=folds, method="predict_proba")
    return pred_probs, classes


def find_label_issues(make_model: Callable[[], Any], X: Any, y: Sequence[Any], *, filter_by: str = "both",
                      random_state: int = 0) -> LabelIssues:
    """Rows of ``(X, y)`` whose given label is probably wrong.

    Skips (with the reason) when fewer than two classes, or a class with fewer than
    ``MIN_PER_CLASS`` labels, are present.
    """
    if filter_by not in FILTERS:
        raise ValueError(f"unknown filter {filter_by!r}; valid ones are {', '.join(FILTERS)}")
    y = np.asarray(y)
    classes, counts = np.unique(y, return_counts=True)
    empty = LabelIssues(np.empty(0, dtype=int), np.empty(0), [])
    if len(classes) < 2:
        return LabelIssues(empty.indices, empty.scores, [], skipped="fewer than two classes are labeled")
    if counts.min() < MIN_PER_CLASS:
        rare = [str(c) for c, n in zip(classes, counts) if n < MIN_PER_CLASS]
        return LabelIssues(empty.indices, empty.scores, [],
                           skipped=f"too few labels to check class(es) {', '.join(rare)} (need {MIN_PER_CLASS} each)")
    pred_probs, classes = out_of_fold_probs(make_model, X, y, random_state=random_state)
    given = np.searchsorted(classes, y)
    # n_jobs=1: cleanlab would otherwise fork a multiprocessing pool, and forking a threaded
    # server process (the retrain runs in a thread) can deadlock the children.
    indices = cleanlab_find_label_issues(given, pred_probs, filter_by=filter_by,
                                         return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(given, pred_probs, method="self_confidence")
    scores = 1.0 - quality[indices]
    suggested = [classes[i] for i in pred_probs[indices].argmax(axis=1)]
    return LabelIssues(np.asarray(indices, dtype=int), scores, suggested, pred_probs=pred_probs, classes=classes)


def weighted_consensus(annotations: Sequence[Sequence[tuple[Any, Any]]], pred_probs: np.ndarray,
                       classes: np.ndarray) -> Consensus:
    """Consensus labels with cleanlab's CROWDLAB: each annotator's vote is weighted by their
    measured quality (agreement with the others and with a model), and the model's out-of-fold
    ``pred_probs`` (rows aligned with ``annotations``) break what the votes cannot.

    ``annotations`` holds, per example, ``(annotator key, label)`` pairs; labels outside
    ``classes`` (a class too rare for the model to know) are left out of the vote.
    """
    from cleanlab.multiannotator import get_label_quality_multiannotator

    index = {c: i for i, c in enumerate(classes)}
    annotators = sorted({key for pairs in annotations for key, label in pairs if label in index}, key=str)
    column = {key: j for j, key in enumerate(annotators)}
    votes = np.full((len(annotations), len(annotators)), np.nan)
    for i, pairs in enumerate(annotations):
        for key, label in pairs:
            if label in index:
                votes[i, column[key]] = index[label]
    frame = pd.DataFrame(votes, columns=[str(a) for a in annotators])
    result = get_label_quality_multiannotator(frame, pred_probs, verbose=False)
    stats = result["annotator_stats"]
    return Consensus(
        labels=[classes[int(i)] for i in result["label_quality"]["consensus_label"]],
        annotator_quality={key: round(float(stats.loc[str(key), "annotator_quality"]), 4) for key in annotators},
    )


# --- noise-aware flags ------------------------------------------------------------------

MIN_LABELS_TO_FLAG = 100  # below this, a model's disagreement says more about the model than the label
# Below this agreement of the out-of-fold predictions with the given labels beyond chance (Cohen's
# kappa), a model's disagreement is mostly its own error, and a model hesitant where it is right
# and sure where it is wrong is explained, once sharpened, as well by "30% of the labels are
# wrong" as by "the model is weak". Kappa, not accuracy: on the queue's hard picks with 10% of
# labels wrong, SNIPS (7 intents, a strong model) agrees with only 0.62-0.78 of the labels and
# movie snippets (2 classes, a weak one) with 0.49-0.64, but their kappas are 0.52-0.74 and
# -0.02-0.28. Before this bar, one movies retrain flagged 81 labels at precision 0.22. 0.4 is
# where "fair" agreement ends on the usual reading of kappa (Landis and Koch).
MIN_KAPPA = 0.4
KAPPA_Z = 1.645  # the bar is cleared by the one-sided 95% lower bound of kappa, not its estimate
FLAGS_WITHDRAWN = "open model flags from earlier checks are withdrawn"  # what a too-weak check tells reviewers
# A flag is raised only where the posterior says its label is at least this likely to be wrong.
# The posterior is optimistic on digits (the queue's hard picks) and pessimistic on short texts;
# with withdrawal (below) and the temperatures down to 0.1, 0.8 kept the open flags' precision at
# 0.85 or more on digits and SNIPS from 500 labels, offline, where 0.9 cost SNIPS a fifth of its
# recall (docs/benchmarks.md has the loop through the service).
PRECISION_TARGET = 0.8
# An open flag is withdrawn once a later check finds its label more likely right than wrong: a
# flag raised by a weaker model would otherwise stay open for good, and the open flags of a run
# add up every check's false alarms (precision 0.64 against 0.74 with withdrawal, SNIPS, offline).
WITHDRAW_BELOW = 0.5
# Sharpening is allowed: a model fit on noisy labels is under-confident (TF-IDF models on short
# texts put 5-10% on a wrong label they are sure of, and the regularized ones chosen on few labels
# need p ** 10). A weak model sharpened hard would look sure everywhere and make every
# disagreement look like noise; the rate's cap and the evidence test below keep that out.
_TEMPERATURES = np.geomspace(0.1, 4.0, 25)
_NOISE_RATES = np.linspace(0.0, 0.3, 61)  # annotators wrong on more than 30% are not labeling
# Noise is believed only when it explains the labels clearly better than no noise does: twice the
# log-likelihood gain at least this (a likelihood-ratio test, p < 0.005 for one parameter).
MIN_EVIDENCE = 7.9
# A noise matrix must beat no noise by the chi-square quantile of one error rate per class.
_MATRIX_P_VALUE = 0.005
_MATRIX_PRIOR = 20.0  # pseudo-labels per class pulling the matrix towards the uniform estimate
_EM_STEPS = 30


@dataclass(frozen=True)
class NoiseEstimate:
    """The annotators' error ``rate`` in ``[0, 0.3]`` and the ``temperature`` that calibrates the
    out-of-fold probabilities (``p ** (1 / temperature)``, renormalized), fitted together;
    ``evidence`` is twice the log-likelihood gain of this noise over none. ``matrix``, when the
    errors depend on the class: ``matrix[c, g]`` is the chance that an example of class ``c`` is
    labeled ``g`` (rows sum to 1); without it, errors fall evenly on the other classes."""

    rate: float
    temperature: float
    evidence: float = 0.0
    matrix: np.ndarray | None = None
    class_weights: np.ndarray | None = None  # with the matrix: the model's per-class bias, corrected
    log_likelihood: float = 0.0  # of the given labels under this estimate

    def calibrated(self, pred_probs: np.ndarray) -> np.ndarray:
        """The out-of-fold probabilities as this estimate reads them: tempered, bias-corrected."""
        q = _tempered(pred_probs, self.temperature)
        return q if self.class_weights is None else _reweighted(q, self.class_weights)

    def label_likelihoods(self, q: np.ndarray, given: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For tempered probabilities ``q``: the chance of each given label, and of it given right."""
        n, k = q.shape
        q_given = q[np.arange(n), given]
        if self.matrix is not None:
            return (q * self.matrix[:, given].T).sum(axis=1), q_given * self.matrix[given, given]
        right = (1.0 - self.rate) * q_given
        return right + self.rate * (1.0 - q_given) / max(k - 1, 1), right


def _tempered(pred_probs: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(pred_probs, 1e-15, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    q = np.exp(logits)
    return q / q.sum(axis=1, keepdims=True)


def estimate_noise(pred_probs: np.ndarray, given: np.ndarray) -> NoiseEstimate:
    """The annotators' errors: class-dependent (:func:`_class_conditional_noise`) when the labels
    show it beyond doubt, else uniform (:func:`_uniform_noise`), else none."""
    uniform = _uniform_noise(pred_probs, given)
    matrix = _class_conditional_noise(pred_probs, given, uniform)
    return matrix if matrix is not None else uniform


def _uniform_noise(pred_probs: np.ndarray, given: np.ndarray) -> NoiseEstimate:
    """Maximum-likelihood annotator error rate under uniform label noise, with a temperature.

    Model of a given label ``g``: ``(1 - rate) * q[g] + rate * (1 - q[g]) / (K - 1)``, where ``q``
    are the tempered out-of-fold probabilities of the true class. A perfect annotator and a
    calibrated model give a rate near 0; wrong labels show up as confident disagreements at a rate
    the temperature cannot explain. When the gain over a rate of 0 is below ``MIN_EVIDENCE`` the
    rate is 0. ``given`` holds column indices into ``pred_probs``.
    """
    n, k = pred_probs.shape
    best, best_clean = (-np.inf, 0.0, 1.0), (-np.inf, 1.0)
    for temperature in _TEMPERATURES:
        total = _uniform_log_likelihoods(_tempered(pred_probs, temperature)[np.arange(n), given], k)
        i = int(total.argmax())
        if total[i] > best[0]:
            best = (float(total[i]), float(_NOISE_RATES[i]), float(temperature))
        if total[0] > best_clean[0]:
            best_clean = (float(total[0]), float(temperature))
    evidence = 2.0 * (best[0] - best_clean[0])
    if evidence < MIN_EVIDENCE:
        return NoiseEstimate(rate=0.0, temperature=best_clean[1], evidence=evidence, log_likelihood=best_clean[0])
    return NoiseEstimate(rate=best[1], temperature=best[2], evidence=evidence, log_likelihood=best[0])


def _uniform_log_likelihoods(q_given: np.ndarray, k: int) -> np.ndarray:
    """The log-likelihood of the given labels under uniform noise, for each rate of ``_NOISE_RATES``."""
    likelihood = np.outer(1.0 - _NOISE_RATES, q_given) + np.outer(_NOISE_RATES, (1.0 - q_given) / max(k - 1, 1))
    return np.log(np.clip(likelihood, 1e-300, None)).sum(axis=1)


def _class_conditional_noise(pred_probs: np.ndarray, given: np.ndarray, uniform: NoiseEstimate) -> NoiseEstimate | None:
    """A noise matrix fitted by expectation-maximization at each temperature, kept only when it
    explains the labels better than both simpler pictures, by likelihood-ratio tests (p < 0.005):
    no noise (with the model's bias per class corrected: a model that under-predicts a class would
    otherwise make a matrix column look like noise; one rate per class of margin), and uniform
    noise (one degree of freedom per extra parameter). Uniform noise stays with its one rate: the
    matrix's extra freedom cost precision on the queue's hard examples in the loop.

    Systematic errors (every wrong label of a class going to one other class) look to a uniform
    model like a few confusable examples, and were not flagged (docs/benchmarks.md). The matrix is
    pulled towards the uniform estimate by ``_MATRIX_PRIOR`` pseudo-labels per class, so that a
    class with few labels keeps the uniform picture, and no class is wrong more than 30%.
    """
    n, k = pred_probs.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), given] = 1.0
    clean = uniform_with_weights = -np.inf
    best: tuple[float, float, np.ndarray, np.ndarray, np.ndarray] | None = None
    for temperature in _TEMPERATURES:
        tempered = _tempered(pred_probs, temperature)
        weights = _class_weights(tempered, onehot)
        q = _reweighted(tempered, weights)
        totals = _uniform_log_likelihoods(q[np.arange(n), given], k)
        clean, uniform_with_weights = max(clean, float(totals[0])), max(uniform_with_weights, float(totals.max()))
        matrix = _fit_matrix(q, given, onehot, prior_rate=max(uniform.rate, 0.01))
        total = float(np.log(np.clip((q * matrix[:, given].T).sum(axis=1), 1e-300, None)).sum())
        if best is None or total > best[0]:
            best = (total, float(temperature), matrix, weights, q)
    assert best is not None
    if best[1] <= _TEMPERATURES[0]:
        # Sharpened as far as allowed and still wanting more: the probabilities are too flat for a
        # matrix to be read from them (its class weights then soak up what the temperature could
        # not, and on SNIPS it flagged clean labels at an estimated 16% noise where 10% was given).
        return None
    evidence = 2.0 * (best[0] - clean)
    if evidence < float(chi2.ppf(1.0 - _MATRIX_P_VALUE, k - 1)):
        return None
    # Against uniform noise, on the same bias-corrected probabilities too: on text, the class weights
    # alone explained the labels better than uniform noise without them, and the matrix rode on that
    # (estimated 14-16% noise where 10% was given, precision 0.7 in the loop on SNIPS).
    extra_parameters = k * (k - 1) + (k - 1) - 1  # the matrix and the class weights, against one rate
    if (2.0 * (best[0] - uniform.log_likelihood) < float(chi2.ppf(1.0 - _MATRIX_P_VALUE, extra_parameters))
            or 2.0 * (best[0] - uniform_with_weights) < float(chi2.ppf(1.0 - _MATRIX_P_VALUE, k * (k - 1) - 1))):
        return None
    total, temperature, matrix, weights, q = best
    truth = q * matrix[:, given].T
    share = (truth / truth.sum(axis=1, keepdims=True)).mean(axis=0)  # estimated share of each true class
    rate = float(share @ (1.0 - np.diag(matrix)))
    return NoiseEstimate(rate=round(rate, 4), temperature=temperature, evidence=evidence, matrix=matrix,
                         class_weights=weights, log_likelihood=total)


def _reweighted(q: np.ndarray, weights: np.ndarray) -> np.ndarray:
    w = q * weights
    return w / w.sum(axis=1, keepdims=True)


def _class_weights(q: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Per-class weights that make the model's expected class counts match the labels' (the
    maximum-likelihood prior correction: no noise, only bias)."""
    counts = onehot.sum(axis=0)
    weights = np.ones(q.shape[1])
    for _ in range(_EM_STEPS):
        expected = _reweighted(q, weights).sum(axis=0)
        weights *= np.clip(counts, 0.5, None) / np.clip(expected, 1e-12, None)
        weights /= weights.max()
    return weights


def _fit_matrix(q: np.ndarray, given: np.ndarray, onehot: np.ndarray, *, prior_rate: float) -> np.ndarray:
    k = q.shape[1]
    prior = np.full((k, k), prior_rate / max(k - 1, 1))
    np.fill_diagonal(prior, 1.0 - prior_rate)
    matrix = prior
    for _ in range(_EM_STEPS):
        truth = q * matrix[:, given].T  # [i, c]: chance that row i is of class c and labeled as it was
        truth /= np.clip(truth.sum(axis=1, keepdims=True), 1e-300, None)
        counts = truth.T @ onehot  # [c, g]: expected rows of class c labeled g
        matrix = (counts + _MATRIX_PRIOR * prior) / (counts.sum(axis=1, keepdims=True) + _MATRIX_PRIOR)
        matrix = _cap_error_rates(matrix, max_rate=_NOISE_RATES[-1])
    return matrix


def _cap_error_rates(matrix: np.ndarray, *, max_rate: float) -> np.ndarray:
    wrong = 1.0 - np.diag(matrix)
    over = wrong > max_rate
    if not over.any():
        return matrix
    capped = matrix.copy()
    for c in np.where(over)[0]:
        capped[c] *= max_rate / wrong[c]
        capped[c, c] = 1.0 - max_rate
    return capped


def kappa_with_bound(given: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Cohen's kappa of ``predicted`` against ``given``, and its one-sided 95% lower bound (the
    large-sample standard error ``sqrt(po (1 - po) / n) / (1 - pe)``, Cohen 1960). The bar is
    cleared with confidence: on 200 hard picks of movie snippets a weak model's kappa came out
    above 0.4 by chance once, and its check flagged 20 right labels (docs/benchmarks.md)."""
    observed = float(np.mean(given == predicted))
    chance = float(sum(np.mean(given == c) * np.mean(predicted == c) for c in np.union1d(given, predicted)))
    if chance >= 1.0:  # one class on both sides: no agreement beyond chance to speak of
        return 0.0, 0.0
    kappa = (observed - chance) / (1.0 - chance)
    error = np.sqrt(observed * (1.0 - observed) / len(given)) / (1.0 - chance)
    return kappa, kappa - KAPPA_Z * float(error)


def out_of_fold_kappa(pred_probs: np.ndarray | None, classes: np.ndarray, y: Sequence[Any]) -> float | None:
    """Cohen's kappa of the out-of-fold predictions against the labels (None without them): how
    far beyond chance a model of these labels predicts the ones it did not see."""
    if pred_probs is None:
        return None
    return kappa_with_bound(np.searchsorted(classes, np.asarray(y)), pred_probs.argmax(axis=1))[0]


def probable_errors(pred_probs: np.ndarray, classes: np.ndarray, y: Sequence[Any], *,
                    precision: float = PRECISION_TARGET, min_labels: int = MIN_LABELS_TO_FLAG,
                    min_kappa: float | None = MIN_KAPPA) -> LabelIssues:
    """Rows whose given label is wrong with probability at least ``precision``, most likely first.

    The probability is a posterior: the annotators' error rate (:func:`estimate_noise`) is the
    prior, the calibrated out-of-fold probabilities the evidence. ``scores`` are those posteriors
    (in ``[0, 1]``, higher is more suspicious), so flags come out at the precision asked for when
    the model is calibrated; when the labels are few, or look clean, or the model agrees with them
    beyond chance less than ``min_kappa`` (with 95% confidence), nothing is flagged.
    ``pred_probs``: out-of-fold, shape ``(n, n_classes)`` in the order of ``classes``.
    """
    y = np.asarray(y)
    none = np.empty(0, dtype=int)
    if len(y) < min_labels:
        return LabelIssues(none, np.empty(0), [], skipped=f"{len(y)} labels are too few to judge a label "
                                                          f"(flags start at {min_labels})", pred_probs=pred_probs,
                           classes=classes)
    given = np.searchsorted(classes, y)
    if min_kappa is not None:
        kappa, lowest = kappa_with_bound(given, pred_probs.argmax(axis=1))
        if lowest < min_kappa:
            return LabelIssues(none, np.empty(0), [], skipped=f"the model agrees with the labels too little to judge "
                                                              f"them (out-of-fold Cohen's kappa {kappa:.2f}, at least "
                                                              f"{lowest:.2f} at 95% confidence; checks start at "
                                                              f"{min_kappa}; {FLAGS_WITHDRAWN})", pred_probs=pred_probs,
                               classes=classes, model_too_weak=True)
    noise = estimate_noise(pred_probs, given)
    n, k = pred_probs.shape
    q = noise.calibrated(pred_probs)
    likelihood, right = noise.label_likelihoods(q, given)
    posterior = 1.0 - right / np.clip(likelihood, 1e-300, None)
    chosen = np.where(posterior >= precision)[0]
    chosen = chosen[np.argsort(-posterior[chosen], kind="stable")]
    # The suggestion: the most likely true class other than the given one (the matrix says which
    # class a label of this kind usually hides).
    others = q * noise.matrix[:, given].T if noise.matrix is not None else q.copy()
    others[np.arange(n), given] = -1.0
    suggested = [classes[i] for i in others[chosen].argmax(axis=1)]
    expected = float(posterior[chosen].mean()) if len(chosen) else None
    return LabelIssues(chosen, posterior[chosen], suggested, pred_probs=pred_probs, classes=classes, noise=noise,
                       expected_precision=expected, posteriors=posterior)
