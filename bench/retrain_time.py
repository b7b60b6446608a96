"""How long a retrain takes as labels grow: 1k, 10k and 100k labels.

    cd bench && ../.venv/bin/python retrain_time.py [--sizes 1000 10000 100000] [--db sqlite]

Each size: a fresh database, a project whose examples are imported with their labels (plus as
many unlabeled ones, which the run re-scores), then one retrain run executed in this process,
timed end to end (snapshot, hyperparameter search, label check, fits, promotion, re-scoring).
Data: ``vectors`` are 50-dimensional Gaussian blobs of 5 classes (timing only, no model claim);
``text`` repeats the real corpora of ``bench/data`` (movie snippets and SNIPS intents) as needed.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from common import DATA_DIR, fresh_database, machine, today


def vector_rows(n: int, seed: int = 0) -> list[dict]:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=2 * n, n_features=50, n_informative=20, n_classes=5, random_state=seed)
    return [{"external_id": f"v{i}", "features": X[i].round(4).tolist(), **({"label": f"c{y[i]}"} if i < n else {})}
            for i in range(2 * n)]


def text_rows(n: int) -> list[dict]:
    corpus = [json.loads(line) for name in ("snips_intents.jsonl", "movie_snippets.jsonl")
              for line in (DATA_DIR / name).read_text().splitlines()]
    corpus = [corpus[i] for i in np.random.default_rng(0).permutation(len(corpus))]
    rows = []
    for i in range(2 * n):
        source = corpus[i % len(corpus)]
        rows.append({"external_id": f"t{i}", "text": source["text"] + ("" if i < len(corpus) else f" #{i // len(corpus)}"),
                     **({"label": source["label"]} if i < n else {})})
    return rows


def time_retrain(url: str, rows: list[dict]) -> tuple[float, dict]:
    from labeling import projects, runs
    from labeling.db import make_engine, make_sessionmaker, utcnow
    from labeling.examples import import_examples, json_rows
    from labeling.models import RetrainRun

    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    labels = sorted({r["label"] for r in rows if "label" in r})
    with maker() as s:
        project = projects.create_project(s, "timing", labels, {"retrain_threshold": 100000}, now=utcnow())
        import_examples(s, project, json_rows(rows), now=utcnow())
        run, _ = runs.request_retrain(s, project, trigger="manual", now=utcnow())
        s.commit()
        run_id = run.id
    t0 = time.perf_counter()
    status = runs.execute_run(maker, run_id)
    seconds = time.perf_counter() - t0
    with maker() as s:
        result = s.get(RetrainRun, run_id).result or {}
    engine.dispose()
    assert status == "succeeded", result
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--data", nargs="+", default=["vectors", "text"], choices=["vectors", "text"])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"# bench/retrain_time.py on {machine()}, {today()}, {args.db}")
    print("| data | labels | unlabeled re-scored | retrain seconds | hyperparameters chosen |")
    print("|---|---|---|---|---|")
    for kind in args.data:
        for n in args.sizes:
            rows = vector_rows(n) if kind == "vectors" else text_rows(n)
            with fresh_database(args.db) as url:
                seconds, result = time_retrain(url, rows)
            print(f"| {kind} | {n} | {result.get('rescored')} | {seconds:.1f} | {result.get('hyperparameters')} |", flush=True)


if __name__ == "__main__":
    main()
