"""Label-error detection through the service against plain cleanlab, on planted noise.

    .venv/bin/python bench/label_errors.py [--seeds 0 1 2]

For each setting (uniform and class-conditional flips, 10% and 20%) it imports scikit-learn's
digits with the flipped labels, retrains through the API, reads the flags through the API, and
scores them against the true flips; in the same run it scores plain cleanlab
(``find_label_issues`` defaults, on out-of-fold probabilities of a default logistic regression).
"""

from __future__ import annotations

import argparse
from http.client import HTTPConnection

import numpy as np
from cleanlab.filter import find_label_issues
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from common import admin_token, fresh_database, import_rows, machine, request, served, today


def flip(y: np.ndarray, fraction: float, kind: str, rng: np.random.Generator) -> np.ndarray:
    noisy = y.copy()
    chosen = rng.random(len(y)) < fraction
    for i in np.where(chosen)[0]:
        if kind == "uniform":
            noisy[i] = rng.choice([c for c in range(10) if c != y[i]])
        else:  # class-conditional: each class is confused with one fixed other class
            noisy[i] = (y[i] + 1 + y[i] % 3) % 10
    return noisy


def prf(found: set[int], truth: set[int]) -> tuple[float, float, float]:
    tp = len(found & truth)
    p = tp / len(found) if found else 0.0
    r = tp / len(truth) if truth else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def service_flags(url: str, X: np.ndarray, noisy: np.ndarray) -> set[int]:
    token = admin_token(url)
    with served(url, workers=1, env={"LABELING_JOBS": "thread"}) as (host, port, _):
        conn = HTTPConnection(host, port, timeout=600)
        status, body = request(conn, "POST", "/api/v1/projects", token, {
            "name": "noisy", "labels": [str(d) for d in range(10)], "settings": {"retrain_threshold": 100000}})
        project_id = body["id"]
        rows = [{"external_id": str(i), "features": X[i].tolist(), "label": str(noisy[i])} for i in range(len(X))]
        import_rows(conn, project_id, token, rows)
        import time
        while True:  # the import queued the first run; wait for it
            _, body = request(conn, "GET", f"/api/v1/projects/{project_id}/runs?limit=1", token)
            if body["runs"] and body["runs"][0]["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.2)
        _, body = request(conn, "GET", f"/api/v1/projects/{project_id}/flags?limit=1000", token)
        return {int(f["external_id"]) for f in body["flags"]}


def plain_cleanlab(X: np.ndarray, noisy: np.ndarray) -> set[int]:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    pred_probs = cross_val_predict(model, X, noisy, cv=folds, method="predict_proba")
    return set(np.where(find_label_issues(noisy, pred_probs))[0].tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    digits = load_digits()
    X, y = digits.data, digits.target
    print(f"# bench/label_errors.py on {machine()}, {today()}: digits ({len(y)} rows), seeds {args.seeds}")
    print("| noise | service P / R / F1 | plain cleanlab P / R / F1 |")
    print("|---|---|---|")
    for kind in ("uniform", "class-conditional"):
        for fraction in (0.1, 0.2):
            ours, theirs = [], []
            for seed in args.seeds:
                noisy = flip(y, fraction, kind, np.random.default_rng(seed))
                truth = set(np.where(noisy != y)[0].tolist())
                with fresh_database("sqlite") as url:
                    ours.append(prf(service_flags(url, X, noisy), truth))
                theirs.append(prf(plain_cleanlab(X, noisy), truth))
            o, t = np.mean(ours, axis=0), np.mean(theirs, axis=0)
            print(f"| {kind} {fraction:.0%} | {o[0]:.3f} / {o[1]:.3f} / **{o[2]:.3f}** | {t[0]:.3f} / {t[1]:.3f} / {t[2]:.3f} |")


if __name__ == "__main__":
    main()
