"""Active learning through the service: a simulated annotator labels over HTTP only.

    .venv/bin/python bench/simulate.py --dataset digits --strategies margin random --seeds 0 1 2
    .venv/bin/python bench/simulate.py --dataset data.jsonl --label-field label ...

Imports the pool with its labels held back, then loops next -> label (the true answer) through
the API; the project retrains every ``--threshold`` labels. After each retrain it asks the
champion (``/predict``) for a held-out test split. It waits for each run to finish before the
next label, as a human's pace would allow. Prints the learning curve and the labels needed to
reach 95% and 99% of the accuracy of the same model trained on the whole pool (every label
counts, holdout picks included), the mean over seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from common import admin_token, fresh_database, machine, request, served, today

from active_learning.featurize import INPUT_KIND, resolve_featurizer  # noqa: E402
from active_learning.models import make_model  # noqa: E402


def load_dataset(name: str, label_field: str) -> list[dict]:
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        return [{"external_id": f"d{i}", "features": digits.data[i].tolist(), "label": str(int(digits.target[i]))}
                for i in range(len(digits.target))]
    rows = [json.loads(line) for line in Path(name).read_text().splitlines() if line.strip()]
    for row in rows:
        row["label"] = str(row.pop(label_field))
    return rows


def full_pool_accuracy(pool: list[dict], test: list[dict], featurizer: str) -> float:
    kind = INPUT_KIND[featurizer]
    def inputs(rows):
        return np.array([r["features"] for r in rows]) if kind == "vector" else [r.get("text", "") for r in rows]
    model = make_model(featurizer).fit(inputs(pool), [r["label"] for r in pool])
    return float(np.mean(model.predict(inputs(test)) == np.array([r["label"] for r in test])))


def simulate(url: str, pool: list[dict], test: list[dict], labels: list[str], *, strategy: str, threshold: int,
             budget: int, seed: int) -> list[tuple[int, float]]:
    token = admin_token(url, name=f"admin{seed}{strategy}")
    truth = {r["external_id"]: r["label"] for r in pool}
    curve: list[tuple[int, float]] = []
    with served(url, workers=1, env={"LABELING_JOBS": "thread"}) as (host, port, _):
        conn = HTTPConnection(host, port, timeout=120)
        status, body = request(conn, "POST", "/api/v1/projects", token, {
            "name": f"sim-{strategy}-{seed}", "labels": labels,
            # queue_seed: the import's random keys and the queue's random picks replay with the seed.
            "settings": {"strategy": strategy, "retrain_threshold": threshold, "queue_seed": seed}})
        assert status == 201, body
        project_id = body["id"]
        hidden = [{k: v for k, v in r.items() if k != "label"} for r in pool]
        status, body = request(conn, "POST", f"/api/v1/projects/{project_id}/examples", token, {"examples": hidden})
        assert status == 201, body
        test_inputs = [{k: v for k, v in r.items() if k in ("features", "text")} for r in test]
        test_truth = np.array([r["label"] for r in test])
        seen_version = None
        for n in range(1, budget + 1):
            wait_for_runs(conn, project_id, token)
            status, body = request(conn, "GET", f"/api/v1/projects/{project_id}/next", token)
            if status == 204:
                break
            example = body["example"]
            status, _ = request(conn, "POST", f"/api/v1/projects/{project_id}/labels", token, {
                "example_id": example["id"], "label": truth[example["external_id"]], "lease_id": body["lease"]["id"]})
            assert status == 201
            if n % threshold == 0:
                wait_for_runs(conn, project_id, token)
                status, body = request(conn, "POST", f"/api/v1/projects/{project_id}/predict", token, {"examples": test_inputs})
                if status == 200 and body["model_version"] != seen_version:
                    seen_version = body["model_version"]
                accuracy = float(np.mean(np.array([p["label"] for p in body["predictions"]]) == test_truth)) if status == 200 else 0.0
                curve.append((n, accuracy))
    return curve


def wait_for_runs(conn: HTTPConnection, project_id: int, token: str) -> None:
    while True:
        status, body = request(conn, "GET", f"/api/v1/projects/{project_id}/runs?limit=1", token)
        if not body["runs"] or body["runs"][0]["status"] not in ("queued", "running"):
            return
        time.sleep(0.05)


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((n for n, acc in curve if acc >= target), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits", help="'digits' or a JSONL file in the import format")
    parser.add_argument("--label-field", default="label")
    parser.add_argument("--strategies", nargs="+", default=["margin", "uncertainty", "entropy", "batch", "random"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=int, default=10)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--test-size", type=float, default=0.3)
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    rows = load_dataset(args.dataset, args.label_field)
    labels = sorted({r["label"] for r in rows})
    featurizer = resolve_featurizer("auto", has_vectors="features" in rows[0])
    print(f"# bench/simulate.py on {machine()}, {today()}: {args.dataset}, {len(rows)} rows, retrain every "
          f"{args.threshold} labels, budget {args.budget}, seeds {args.seeds}")
    table = []
    for strategy in args.strategies:
        reach95, reach99, curves = [], [], []
        for seed in args.seeds:
            pool, test = train_test_split(rows, test_size=args.test_size, random_state=seed,
                                          stratify=[r["label"] for r in rows])
            full = full_pool_accuracy(pool, test, featurizer)
            with fresh_database(args.db) as url:
                t0 = time.perf_counter()
                curve = simulate(url, pool, test, labels, strategy=strategy, threshold=args.threshold,
                                 budget=args.budget, seed=seed)
            reach95.append(labels_to_reach(curve, 0.95 * full))
            reach99.append(labels_to_reach(curve, 0.99 * full))
            curves.append(curve)
            print(f"{strategy:12s} seed {seed}: full-pool accuracy {full:.3f}; 95% at {reach95[-1]}, 99% at "
                  f"{reach99[-1]} labels ({time.perf_counter() - t0:.0f} s); curve "
                  + " ".join(f"{n}:{a:.2f}" for n, a in curve[:: max(1, len(curve) // 12)]))
        def mean(values):
            return "n/a" if any(v is None for v in values) else f"{np.mean(values):.0f}"
        table.append((strategy, mean(reach95), mean(reach99), reach95, reach99))
    print("\n| strategy | labels to 95% of full-pool accuracy | labels to 99% | per seed (95% / 99%) |")
    print("|---|---|---|---|")
    for strategy, m95, m99, r95, r99 in table:
        print(f"| {strategy} | {m95} | {m99} | {r95} / {r99} |")


if __name__ == "__main__":
    main()
