"""How well could any flag rule do with the service's model? A ceiling, not the service.

    cd bench && ../.venv/bin/python flag_ceiling.py --dataset movies --sizes 500 1000 --seeds 0 1 2

For ``n`` labels drawn at random from a corpus's pool, with a share of them made wrong (uniform
over the other classes), it cross-validates the service's hyperparameter search
(``active_learning.model_selection``) on the given labels and ranks the labels by the out-of-fold
probability that the given one is wrong. Then, over every cut-off of that ranking (the best
threshold, chosen knowing which labels are wrong), it prints the highest recall at a precision of
at least ``--precision``. No flag rule that ranks labels by this model can beat it, so a corpus
whose ceiling is below the issue's recall target cannot meet it with this model, whatever the
threshold. Planted noise on random labels: this bounds the loop, it does not measure it
(``simulate.py --noise`` does).
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.model_selection import train_test_split

from common import machine, today
from first_picks import corpus

from active_learning.featurize import fit_featurizer  # noqa: E402
from active_learning.model_selection import choose_hyperparameters  # noqa: E402


def best_recall(wrongness: np.ndarray, wrong: np.ndarray, precision: float) -> tuple[float, int]:
    """The highest recall of the top-k rule over every k at a precision of at least
    ``precision``, and that k (0 when no cut-off is precise enough)."""
    order = np.argsort(-wrongness, kind="stable")
    hits = np.cumsum(wrong[order])
    k = np.arange(1, len(order) + 1)
    precise = hits / k >= precision
    if not precise.any() or not wrong.any():
        return 0.0, 0
    best = int(np.argmax(np.where(precise, hits, -1)))
    return float(hits[best] / wrong.sum()), best + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="movies", choices=["digits", "snips", "movies"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--precision", type=float, default=0.8)
    args = parser.parse_args()
    print(f"# bench/flag_ceiling.py on {machine()}, {today()}: {args.dataset}, {args.noise:.0%} of labels wrong "
          f"(uniform), seeds {args.seeds}; the best recall at precision >= {args.precision}")
    print("\n| labels | seed | wrong labels | out-of-fold accuracy (given labels) | best recall | flags at that cut-off |")
    print("|---|---|---|---|---|---|")
    inputs, labels, featurizer = corpus(args.dataset)
    classes = np.unique(labels)
    for seed in args.seeds:
        pool, _ = train_test_split(np.arange(len(labels)), test_size=0.3, random_state=seed, stratify=labels)
        features = fit_featurizer(featurizer, [inputs[i] for i in pool])  # as the service: fitted on the pool
        for size in args.sizes:
            rng = np.random.default_rng(seed)
            chosen = rng.choice(pool, size=min(size, len(pool)), replace=False)
            given = labels[chosen].copy()
            wrong = rng.random(len(chosen)) < args.noise
            for i in np.where(wrong)[0]:
                given[i] = rng.choice([c for c in classes if c != given[i]])
            search = choose_hyperparameters(features.transform([inputs[i] for i in chosen]), given, random_state=seed)
            columns = np.searchsorted(search.classes, given)
            wrongness = 1.0 - search.pred_probs[np.arange(len(given)), columns]
            recall, flags = best_recall(wrongness, wrong, args.precision)
            accuracy = float(np.mean(search.classes[search.pred_probs.argmax(axis=1)] == given))
            print(f"| {len(chosen)} | {seed} | {int(wrong.sum())} | {accuracy:.3f} | **{recall:.2f}** | {flags} |", flush=True)


if __name__ == "__main__":
    main()
