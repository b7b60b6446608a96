"""Multi-label label checks on planted errors: the service's detector against plain cleanlab.

    cd bench && ../.venv/bin/python multilabel_flags.py --dataset digits_multi --seeds 0 1 2

For each seed: a seeded sample of the data set (``--rows``; all rows by default), the project's
featurizer fitted on it, and the sets as given by an annotator who, for a share of the rows
(``--noise``, 10% and 0%), turns one label drawn uniformly (as ``multilabel_sim.MultiLabelAnnotator``:
always a wrong set, one decision off). The service's check is the code path of a retrain
(``labeling/training_multilabel.py``): ``choose_c``, then ``judge_sets``; plain cleanlab is ``cleanlab.multilabel_classification.filter.find_label_issues``
with its defaults on the model's out-of-fold probabilities (and, for comparison, on the check's);
"before" is ``probable_set_errors`` on the model's own out-of-fold probabilities (the rule until
2026-12-01). Printed: precision / recall / F1 of the flagged rows
against the turned ones, and flags per 100 labels when nothing was turned.
"""

from __future__ import annotations

import argparse

import numpy as np
from cleanlab.multilabel_classification.filter import find_label_issues

from common import machine, today
from multilabel_sim import label_names, load_multilabel

from active_learning.featurize import INPUT_KIND, fit_featurizer  # noqa: E402
from active_learning.multilabel import (check_probabilities, choose_c, indicator, judge_sets,
                                        probable_set_errors)  # noqa: E402


def plant(Y: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The sets with one decision turned in a random ``fraction`` of the rows, and those rows."""
    noisy = Y.copy()
    rows = np.where(rng.random(len(Y)) < fraction)[0]
    columns = rng.integers(0, Y.shape[1], len(rows))
    noisy[rows, columns] = 1 - noisy[rows, columns]
    return noisy, rows


def prf(found: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = len(set(found.tolist()) & set(truth.tolist()))
    p = tp / len(found) if len(found) else 0.0
    r = tp / len(truth) if len(truth) else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def detectors(Z, noisy: np.ndarray, names: list[str], seed: int) -> tuple[dict[str, np.ndarray], str]:
    """Each detector's flagged rows, and a note on the service's check (agreement, or why skipped)."""
    C, oof = choose_c(Z, noisy, random_state=seed)
    check = check_probabilities(Z, noisy, C, random_state=seed)
    issues = judge_sets(Z, noisy, oof, names, C, random_state=seed)
    sets = [list(np.flatnonzero(row)) for row in noisy]
    flagged = {"service": np.asarray(issues.indices),
               "cleanlab": np.flatnonzero(find_label_issues(sets, oof, n_jobs=1)),
               "cleanlab_check": np.flatnonzero(find_label_issues(sets, check, n_jobs=1)),
               "before": np.asarray(probable_set_errors(oof, noisy, names).indices)}
    return flagged, issues.skipped or f"C={C:g}"


def run_seed(dataset: str, rows: int | None, noise: float, seed: int) -> tuple[dict[str, tuple], str]:
    data = load_multilabel(dataset, rows, seed)
    names = label_names(data)
    featurizer = "features" if "features" in data[0] else "tfidf"
    inputs = np.array([r["features"] for r in data]) if INPUT_KIND[featurizer] == "vector" \
        else [r.get("text", "") for r in data]
    Z = fit_featurizer(featurizer, inputs).transform(inputs)
    Y = indicator([r["labels"] for r in data], names)
    noisy, turned = plant(Y, noise, np.random.default_rng(seed))
    flagged, note = detectors(Z, noisy, names, seed)
    if noise == 0:
        return {name: (100 * len(f) / len(Y),) for name, f in flagged.items()}, note
    return {name: prf(f, turned) for name, f in flagged.items()}, note


COLUMNS = {"service": "service", "before": "service, the model's own probabilities (before)",
           "cleanlab": "plain cleanlab", "cleanlab_check": "cleanlab on the check's probabilities"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits_multi")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--noise", type=float, nargs="+", default=[0.1, 0.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    print(f"# bench/multilabel_flags.py on {machine()}, {today()}: {args.dataset}, rows {args.rows or 'all'}, "
          f"seeds {args.seeds}")
    for noise in args.noise:
        head = "P / R / F1" if noise else "flags per 100 labels"
        print(f"\n{noise:.0%} of the sets wrong ({head})\n")
        print("| seed | " + " | ".join(COLUMNS.values()) + " | service check |")
        print("|---" * (len(COLUMNS) + 2) + "|")
        results: dict[str, list] = {name: [] for name in COLUMNS}
        for seed in args.seeds:
            scored, note = run_seed(args.dataset, args.rows, noise, seed)
            for name in COLUMNS:
                results[name].append(scored[name])
            print(f"| {seed} | " + " | ".join(_cells(scored[name]) for name in COLUMNS) + f" | {note} |")
        mean = [_cells(tuple(np.mean(results[name], axis=0))) for name in COLUMNS]
        print(f"| mean | **{mean[0]}** | " + " | ".join(mean[1:]) + " | |")


def _cells(values: tuple) -> str:
    return " / ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
