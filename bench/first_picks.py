"""Which first picks teach a model most? An offline replica of the queue's loop, for the cold start.

    cd bench && ../.venv/bin/python first_picks.py --dataset snips --seeds 0 1 2 3 4 5 --budget 80

The loop the service runs, without HTTP: a retrain every ``--batch`` labels (the search of
``active_learning.model_selection``), discovery while a declared class has no label (fewer than 5
labels per class given), then margin with diverse batches (``diverse_top`` on a shortlist 10x the
batch; ``--after`` tries others: ``top``, the most uncertain rows alone; ``density``, margin
times typicality (``density_weights``) over the whole pool; ``density_top``, the same on margin's
top 100x the batch; ``density_gated``, the same only while the last search's out-of-fold kappa
is below the label check's bar, like the service's ``typical_picks``; ``views``, co-testing: where a
model of the TF-IDF columns and one of the sentence embeddings disagree (text only; tried, not
the service's); ``density_sqrt`` and ``density_short``, see ``after_picks``; ``softrank`` and ``density_softrank``:
margin, or the gate's weighed margin, sampled by ``softrank``; ``badge``: k-means++ over each row's
loss gradient, see ``badge``; ``bald``: the mutual information of a bootstrap committee, see
``committee_information``, on the diverse shortlist, and ``density_bald`` the same times
typicality on its top 100x; ``cal``: contrastive active learning, see ``contrastive``; these three
tried, not the service's). Only the first picks differ:
- ``typical``: the service's (``active_learning.cold_start.cold_start_order``);
- ``kmeans++``: k-means++ seeding, from one random row, and continued from the labeled rows for
  discovery (the service's before session 14);
- ``random``: random sampling throughout (no cold start, no discovery, no margin): the baseline.
``--random-mix`` makes each pick a random row with that probability, as the service's holdout
and random share (0.145 by default settings); ``--fixed-c`` fits every model with that C (class
weights balanced) instead of the search; ``--model`` swaps the logistic regression for
another class (``other_model``; tried on movies, not the service's). Corpora and featurizers as in ``simulate.py`` (``features`` for digits, ``tfidf_embeddings`` for
text), the same stratified 30% test split per seed. Prints test accuracy after each retrain and
the labels to 95% of the reference; label counts only, no timing. Not the service: no holdout
picks, no random share (unless ``--random-mix``), no promotion rule; ``simulate.py`` measures the service itself.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.model_selection import train_test_split

from common import DATA_DIR, machine, today

from active_learning.cold_start import cold_start_order  # noqa: E402
from active_learning.featurize import fit_featurizer  # noqa: E402
from active_learning.model_selection import DEFAULT, Search, choose_hyperparameters, make_classifier  # noqa: E402
from active_learning.strategies import diverse_top, informativeness, top_k  # noqa: E402
from active_learning.label_errors import MIN_KAPPA, kappa_with_bound  # noqa: E402
from active_learning.typicality import typicality  # noqa: E402

CORPORA = {"movies": "movie_snippets.jsonl", "snips": "snips_intents.jsonl"}
# The references of simulate.py's runs (best C of the grid by 5-fold CV on the whole pool), for
# "labels to 95%": digits on its features, the texts on tfidf_embeddings.
REFERENCE = {"digits": 0.964, "snips": 0.988, "movies": 0.810}
EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2
PER_CLASS = 5  # discovery's budget, as labeling.rescoring.DISCOVERY_LABELS_PER_CLASS


def corpus(name: str) -> tuple[list, np.ndarray, str]:
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return list(digits.data), digits.target.astype(str), "features"
    rows = [json.loads(line) for line in (DATA_DIR / CORPORA[name]).read_text().splitlines() if line.strip()]
    return [r["text"] for r in rows], np.array([str(r["label"]) for r in rows]), "tfidf_embeddings"


def first_picks(method: str, X_unlabeled, X_labeled, batch: int, rng: np.random.Generator) -> np.ndarray:
    """The picks before a model, or while a class is missing (continued from ``X_labeled``)."""
    if method == "typical":
        return cold_start_order(X_unlabeled, n_seeds=batch, batch=batch, X_labeled=X_labeled, random_state=rng)
    return kmeans_plus_plus(X_unlabeled, X_labeled, batch, rng)


def kmeans_plus_plus(X, X_labeled, n: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (D² sampling): from one random row, or continued from the labeled rows."""
    if X_labeled is None:
        chosen = [int(rng.integers(X.shape[0]))]
        closest = euclidean_distances(X, X[chosen[0]:chosen[0] + 1], squared=True).ravel()
    else:
        chosen, closest = [], euclidean_distances(X, X_labeled, squared=True).min(axis=1)
    while len(chosen) < n and closest.sum() > 0:
        chosen.append(int(rng.choice(X.shape[0], p=closest / closest.sum())))
        closest = np.minimum(closest, euclidean_distances(X, X[chosen[-1]:chosen[-1] + 1], squared=True).ravel())
    return np.asarray(chosen, dtype=int)


def density_weights(X, seed: int, unit_length: bool) -> np.ndarray:
    """Typicality of each pool row among all of them, as the service weighs margin by it
    (``active_learning.typicality``; information density, Settles and Craven 2008)."""
    return typicality(X, X, in_reference=np.ones(X.shape[0], dtype=bool), unit_length=unit_length, random_state=seed)


def after_picks(after: str, X_unlabeled, scores: np.ndarray, density: np.ndarray | None, batch: int,
                rng: np.random.Generator, beta: float = 1.0) -> np.ndarray:
    """Picks once a model knows every class: margin ``scores`` (weighted by ``density`` for
    ``density``, by its square root for ``density_sqrt``), the top ones alone (``top``) or spread by
    ``diverse_top`` on a shortlist 10x the batch; ``density_short``: margin's shortlist, and within
    each of its clusters the best of margin times density."""
    if after == "density":
        scores = scores * density
    elif after in ("density_top", "density_gated", "density_softrank"):  # as the service: the top margins, 100x the batch, weighed
        weighed = np.zeros_like(scores)
        candidates = top_k(scores, batch * 100)
        weighed[candidates] = scores[candidates] * density[candidates]
        scores = weighed
    elif after == "density_sqrt":
        scores = scores * np.sqrt(density)
    if after == "top":
        return top_k(scores, batch)
    if after.endswith("softrank"):
        return softrank(scores, batch, rng, beta)
    shortlist = top_k(scores, batch * 10)
    within = scores[shortlist] * (density[shortlist] if after == "density_short" else 1.0)
    return shortlist[diverse_top(X_unlabeled[shortlist], within, batch, random_state=rng)]


def softrank(scores: np.ndarray, batch: int, rng: np.random.Generator, beta: float = 1.0) -> np.ndarray:
    """Stochastic batch acquisition (Kirsch et al. 2023, "softrank"): ``batch`` rows drawn without
    replacement with probability proportional to rank^-beta (the Gumbel top-k trick)."""
    ranks = np.empty(len(scores))
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return top_k(-beta * np.log(ranks) + rng.gumbel(size=len(scores)), batch)


def badge(X, probs: np.ndarray, batch: int, rng: np.random.Generator) -> np.ndarray:  # tried: no gain on movies
    """BADGE (Ash et al. 2020) for a linear model: k-means++ seeding, from the longest, over each
    row's loss gradient for its predicted class, (p - onehot(argmax p)) outer x, one block of x per class."""
    from scipy import sparse

    residual = probs - np.eye(probs.shape[1])[probs.argmax(axis=1)]
    rows = sparse.csr_matrix(X)
    gradients = sparse.hstack([sparse.diags(residual[:, k]) @ rows for k in range(probs.shape[1])]).tocsr()
    first = int(np.asarray(gradients.multiply(gradients).sum(axis=1)).ravel().argmax())
    chosen, closest = [first], euclidean_distances(gradients, gradients[first], squared=True).ravel()
    while len(chosen) < batch and closest.sum() > 0:
        chosen.append(int(rng.choice(gradients.shape[0], p=closest / closest.sum())))
        closest = np.minimum(closest, euclidean_distances(gradients, gradients[chosen[-1]], squared=True).ravel())
    return np.asarray(chosen, dtype=int)


def committee_information(X_labeled, y_labeled: np.ndarray, X_unlabeled, params: dict, rng: np.random.Generator,
                          members: int = 5) -> np.ndarray:
    """BALD's mutual information with a committee of bootstrap models (Houlsby et al. 2011; QBC by
    bagging, Abe and Mamitsuka 1998): the entropy of the mean prediction minus the members' mean
    entropy. High where the members disagree (too few labels nearby), low where each of them is
    unsure alike (an example ambiguous in itself, which more labels will not settle)."""
    from sklearn.utils import resample

    classes = np.unique(y_labeled)
    probs = []
    for _ in range(members):
        rows = resample(np.arange(len(y_labeled)), stratify=y_labeled, random_state=int(rng.integers(2**31)))
        member = make_classifier(**params).fit(X_labeled[rows], y_labeled[rows])
        p = np.zeros((X_unlabeled.shape[0], len(classes)))
        p[:, np.searchsorted(classes, member.classes_)] = member.predict_proba(X_unlabeled)
        probs.append(p)
    probs = np.array(probs)

    def entropy(p):
        return -(p * np.log(np.clip(p, 1e-12, 1))).sum(axis=-1)

    return entropy(probs.mean(axis=0)) - entropy(probs).mean(axis=0)


def contrastive(X_labeled, X_unlabeled, probs_labeled: np.ndarray, probs: np.ndarray, neighbours: int = 10) -> np.ndarray:
    """CAL (Margatina et al. 2021): the mean KL divergence from the model's predictions for each
    row's nearest labeled rows (cosine, on the sentence-embedding columns) to its own. High where
    the model tells a row apart from labeled rows that look like it."""
    from sklearn.neighbors import NearestNeighbors

    split = X_labeled.shape[1] - EMBEDDING_DIMENSIONS
    embed = (lambda X: np.asarray(X[:, split:].todense()) if hasattr(X, "todense") else X[:, split:])
    found = NearestNeighbors(n_neighbors=min(neighbours, X_labeled.shape[0]), metric="cosine").fit(embed(X_labeled))
    near = found.kneighbors(embed(X_unlabeled), return_distance=False)
    p, q = np.clip(probs_labeled[near], 1e-12, 1), np.clip(probs, 1e-12, 1)[:, None, :]
    return (p * np.log(p / q)).sum(axis=-1).mean(axis=1)


def views_disagreement(X_labeled, y_labeled: np.ndarray, X_unlabeled, params: dict) -> np.ndarray:
    """Total variation between a model of the TF-IDF columns and one of the embedding columns
    (the last ``EMBEDDING_DIMENSIONS`` of ``tfidf_embeddings``): Muslea et al.'s contention points."""
    split = X_labeled.shape[1] - EMBEDDING_DIMENSIONS
    if split <= 0:
        raise SystemExit("--after views needs text (tfidf_embeddings: TF-IDF columns, then the embedding's)")
    views = [slice(0, split), slice(split, None)]
    probs = [make_classifier(**params).fit(X_labeled[:, v], y_labeled).predict_proba(X_unlabeled[:, v]) for v in views]
    return 0.5 * np.abs(probs[0] - probs[1]).sum(axis=1)


def mixed_with_random(picks: np.ndarray, n_unlabeled: int, share: float, rng: np.random.Generator) -> np.ndarray:
    """The service's random picks (the holdout's and the random share's, which the serving model
    also trains on): each pick of a batch is, with probability ``share``, a random row instead."""
    swap = rng.random(len(picks)) < share
    picks = picks.copy()
    picks[swap] = rng.choice(np.setdiff1d(np.arange(n_unlabeled), picks), int(swap.sum()), replace=False)
    return picks


class _Scored:
    """A fitted model whose probabilities come from a decision function (a sigmoid or softmax)."""

    def __init__(self, model, classes):
        self.model, self.classes_ = model, classes

    def predict(self, X):
        return self.model.predict(X)

    def predict_proba(self, X):
        d = self.model.decision_function(X)
        d = np.column_stack([-d, d]) if d.ndim == 1 else d
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)


def other_model(name: str, X, labeled: list[int], y: np.ndarray, params: dict, seed: int):
    """Tried beside the service's logistic regression: ``svm``, a linear SVM (``LinearSVC``, squared
    hinge loss) at a tenth of the search's C, margin from its decision function; ``spreading``, label spreading over a 10-nearest-
    neighbour graph of the whole pool's sentence embeddings (the pool's unlabeled rows take part)."""
    from sklearn.svm import LinearSVC
    from sklearn.semi_supervised import LabelSpreading
    from scipy import sparse

    if name == "svm":
        return _Scored(LinearSVC(C=params["C"] / 10, class_weight=params.get("class_weight"), random_state=seed)
                       .fit(X[labeled], y[labeled]), np.unique(y[labeled]))
    if name == "spreading":
        dense = np.asarray(X[:, -EMBEDDING_DIMENSIONS:].todense()) if sparse.issparse(X) else X
        classes = np.unique(y[labeled])
        target = np.full(X.shape[0], -1)
        target[labeled] = np.searchsorted(classes, y[labeled])
        spread = LabelSpreading(kernel="knn", n_neighbors=10, alpha=0.2, max_iter=100).fit(dense, target)

        class Spread:
            classes_ = classes

            def predict_proba(self, Xq):
                dq = np.asarray(Xq[:, -EMBEDDING_DIMENSIONS:].todense()) if sparse.issparse(Xq) else Xq
                return spread.predict_proba(dq)

            def predict(self, Xq):
                return classes[self.predict_proba(Xq).argmax(axis=1)]
        return Spread()
    raise ValueError(name)


def run(method: str, X, y: np.ndarray, X_test, y_test: np.ndarray, *, batch: int, budget: int, seed: int,
        after: str = "diverse", density: np.ndarray | None = None, beta: float = 1.0,
        random_mix: float = 0.0, fixed_c: float | None = None, model_class: str = "lr") -> list[float]:
    rng = np.random.default_rng(seed)
    n_classes = len(set(y))
    labeled: list[int] = []
    model = None
    kappas: list[float] = []
    weak = False  # density_gated: the last search's out-of-fold kappa is below the label check's bar (point estimate)
    curve = []
    while len(labeled) < budget:
        unlabeled = np.setdiff1d(np.arange(len(y)), labeled)
        missing = len(set(y[labeled])) < n_classes and len(labeled) < PER_CLASS * n_classes
        if method == "random":
            picks = rng.choice(len(unlabeled), batch, replace=False)
        elif model is None or missing:
            picks = first_picks(method, X[unlabeled], X[labeled] if labeled else None, batch, rng)
        else:
            probs = model.predict_proba(X[unlabeled])
            scores = informativeness(probs, "margin")
            if after in ("bald", "density_bald"):
                scores = committee_information(X[labeled], y[labeled], X[unlabeled], search.params or DEFAULT, rng)
            if after == "cal":
                scores = contrastive(X[labeled], X[unlabeled], model.predict_proba(X[labeled]), probs)
            if after == "badge":
                picks = badge(X[unlabeled], probs, batch, rng)
            elif after == "views":  # co-testing: where a model of the words and one of the sentence embeddings disagree
                scores = views_disagreement(X[labeled], y[labeled], X[unlabeled], search.params or DEFAULT)
            if after != "badge":
                rule = {"bald": "diverse", "density_bald": "density_top", "cal": "diverse"}.get(after, after)
                picks = after_picks("diverse" if after == "density_gated" and not weak else rule, X[unlabeled],
                                    scores, None if density is None else density[unlabeled], batch, rng, beta)
        if random_mix and method != "random":
            picks = mixed_with_random(np.asarray(picks, dtype=int)[:batch], len(unlabeled), random_mix, rng)
        if len(picks) < batch:
            raise RuntimeError(f"{method} picked {len(picks)} rows, not {batch}: the label counts would be wrong")
        labeled += [int(i) for i in unlabeled[np.asarray(picks, dtype=int)][:batch]]
        if len(set(y[labeled])) < 2:
            curve.append(0.0)
            continue
        search = (Search({"C": fixed_c, "class_weight": "balanced"}, np.unique(y[labeled])) if fixed_c
                  else choose_hyperparameters(X[labeled], y[labeled], random_state=seed))
        weak = False  # as the service: no typical picks while the labels are too few to cross-validate
        if search.pred_probs is not None:
            kappa = kappa_with_bound(y[labeled], search.classes[search.pred_probs.argmax(axis=1)])[0]
            weak = kappa < MIN_KAPPA
            kappas.append(kappa)
        model = other_model(model_class, X, labeled, y, search.params or DEFAULT, seed) if model_class != "lr" else \
            make_classifier(**(search.params or DEFAULT)).fit(X[labeled], y[labeled])
        curve.append(float((model.predict(X_test) == y_test).mean()))
    if after == "density_gated":
        print("  out-of-fold kappa after each retrain: " + " ".join(f"{k:.2f}" for k in kappas), flush=True)
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="snips", choices=["digits", "snips", "movies"])
    parser.add_argument("--methods", nargs="+", default=["typical", "kmeans++", "random"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--budget", type=int, default=80)
    parser.add_argument("--after", nargs="+", default=["diverse"], choices=["diverse", "top", "density", "density_top", "density_gated", "density_sqrt",
                                                                     "density_short", "views", "softrank", "density_softrank", "badge",
                                                                     "bald", "density_bald", "cal"],
                        help="picks once every class is labeled (each one a method of its own after the first)")
    parser.add_argument("--beta", type=float, default=1.0, help="softrank's exponent")
    parser.add_argument("--random-mix", type=float, default=0.0,
                        help="each pick is a random row with this probability, as the service's holdout and random share (0.145)")
    parser.add_argument("--fixed-c", type=float, help="fit every model with this C (balanced) instead of the search")
    parser.add_argument("--model", default="lr", choices=["lr", "svm", "spreading"], help="the model class (see other_model)")
    parser.add_argument("--reference", type=float, help="the reference accuracy (default: the corpus's own)")
    args = parser.parse_args()
    reference = args.reference or REFERENCE[args.dataset]
    print(f"# bench/first_picks.py on {machine()}, {today()}: {args.dataset}, a retrain every {args.batch} labels, "
          f"budget {args.budget}, seeds {args.seeds}; reference {reference}; random mix {args.random_mix}"
          + (f"; C fixed at {args.fixed_c}" if args.fixed_c else "") + f"; model {args.model}")
    inputs, labels, featurizer = corpus(args.dataset)
    variants = [(m, a) for m in args.methods for a in (args.after if m != "random" else ["diverse"])]
    name = {(m, a): m if a == "diverse" else f"{m}+{a}" for m, a in variants}
    curves: dict[str, list[list[float]]] = {name[v]: [] for v in variants}
    for seed in args.seeds:
        pool, test = train_test_split(np.arange(len(labels)), test_size=0.3, random_state=seed, stratify=labels)
        features = fit_featurizer(featurizer, [inputs[i] for i in pool])
        X, X_test = (features.transform([inputs[i] for i in part]) for part in (pool, test))
        density = density_weights(X, seed, featurizer != "features") if any(
            a.startswith("density") for a in args.after) else None
        for method, after in variants:
            curve = run(method, X, labels[pool], X_test, labels[test], batch=args.batch, budget=args.budget, seed=seed,
                        after=after, density=density, beta=args.beta, random_mix=args.random_mix, fixed_c=args.fixed_c,
                        model_class=args.model)
            curves[name[method, after]].append(curve)
            print(f"seed {seed} {name[method, after]:9s} " + " ".join(f"{a:.3f}" for a in curve), flush=True)
    target = 0.95 * reference
    print(f"\n| first picks | accuracy after each retrain ({args.batch}, {2 * args.batch}, ... labels), mean | "
          f"labels to 95% of the reference, per seed | mean |")
    print("|---|---|---|---|")
    for method, runs in curves.items():
        reach = [next(((i + 1) * args.batch for i, a in enumerate(c) if a >= target), None) for c in runs]
        reached = [r for r in reach if r is not None]
        mean = (f"{np.mean(reached):.0f}" if reached else "—") + (
            "" if len(reached) == len(reach) else f" ({len(reached)} of {len(reach)} reached)")
        print(f"| {method} | " + " ".join(f"{a:.3f}" for a in np.mean(runs, axis=0)) + f" | {reach} | {mean} |")


if __name__ == "__main__":
    main()
