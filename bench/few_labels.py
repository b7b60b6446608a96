"""Which classifier setting serves best while the labels are too few to cross-validate?

    cd bench && ../.venv/bin/python few_labels.py --datasets digits snips movies

Before every class has two labels a retrain cannot cross-validate, and it fits a fixed fallback
setting (``active_learning.model_selection.DEFAULT``). This draws random labeled sets of each
size from a real corpus (classes as unbalanced as chance makes them), fits every setting of the
service's grid on the service's featurizer (``features`` for digits, ``tfidf_embeddings`` for
text), and prints the mean accuracy on 2,000 other rows. Label counts only: no timing.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from common import DATA_DIR, machine, today

from active_learning.featurize import fit_featurizer  # noqa: E402
from active_learning.model_selection import C_GRID, CLASS_WEIGHTS, make_classifier  # noqa: E402

CORPORA = {"movies": "movie_snippets.jsonl", "snips": "snips_intents.jsonl"}


def corpus(name: str):
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return fit_featurizer("features", digits.data).transform(digits.data), digits.target.astype(str)
    rows = [json.loads(line) for line in (DATA_DIR / CORPORA[name]).read_text().splitlines() if line.strip()]
    texts = [r["text"] for r in rows]
    return fit_featurizer("tfidf_embeddings", texts).transform(texts).tocsr(), np.array([r["label"] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "snips", "movies"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--draws", type=int, default=20)
    args = parser.parse_args()
    print(f"# bench/few_labels.py on {machine()}, {today()}: mean test accuracy over {args.draws} random draws")
    settings = [(c, w) for w in CLASS_WEIGHTS for c in C_GRID]
    print("| corpus | labels | " + " | ".join(f"C {c:g}{', balanced' if w else ''}" for c, w in settings) + " |")
    for name in args.datasets:
        X, y = corpus(name)
        rng = np.random.default_rng(0)
        for n in args.sizes:
            accuracy: dict[tuple, list[float]] = {s: [] for s in settings}
            for _ in range(args.draws):
                labeled = rng.choice(len(y), n, replace=False)
                if len(set(y[labeled])) < 2:
                    continue
                rest = np.setdiff1d(np.arange(len(y)), labeled)
                test = rng.choice(rest, min(2000, len(rest)), replace=False)
                for c, w in settings:
                    model = make_classifier(C=c, class_weight=w).fit(X[labeled], y[labeled])
                    accuracy[(c, w)].append(model.score(X[test], y[test]))
            print(f"| {name} | {n} | " + " | ".join(f"{np.mean(accuracy[s]):.3f}" for s in settings) + " |", flush=True)


if __name__ == "__main__":
    main()
