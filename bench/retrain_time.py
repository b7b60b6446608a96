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


def time_retrain(url: str, rows: list[dict], featurizer: str = "auto", runs_wanted: int = 1) -> tuple[list[float], dict]:
    """Seconds of each of ``runs_wanted`` retrains in a row (a second one reads the sentence
    embeddings the first stored), and the last run's result."""
    from labeling import projects, runs
    from labeling.db import make_engine, make_sessionmaker, utcnow
    from labeling.examples import import_examples, json_rows
    from labeling.models import ModelVersion, Project, RetrainRun
    from sqlalchemy import select

    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    labels = sorted({r["label"] for r in rows if "label" in r})
    with maker() as s:
        project = projects.create_project(s, "timing", labels, {"retrain_threshold": 100000, "featurizer": featurizer},
                                          now=utcnow())
        import_examples(s, project, json_rows(rows), now=utcnow())
        s.commit()
        project_id = project.id
    seconds = []
    for _ in range(runs_wanted):
        with maker() as s:
            run, _ = runs.request_retrain(s, s.get(Project, project_id), trigger="manual", now=utcnow())
            s.commit()
            run_id = run.id
        t0 = time.perf_counter()
        status = runs.execute_run(maker, run_id)
        seconds.append(time.perf_counter() - t0)
        with maker() as s:
            result = dict(s.get(RetrainRun, run_id).result or {})
            latest = s.scalars(select(ModelVersion).where(ModelVersion.project_id == project_id)
                               .order_by(ModelVersion.version.desc())).first()
            result["featurizer"] = latest.metrics.get("featurizer") if latest else None
        assert status == "succeeded", result
    engine.dispose()
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--data", nargs="+", default=["vectors", "text"], choices=["vectors", "text"])
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--featurizer", default="auto", help="the project's featurizer setting (auto: what a project "
                        "gets by default; for text, tfidf_embeddings when the extra is installed and the pool is small)")
    parser.add_argument("--runs", type=int, default=1, help="retrains in a row per size (the second reads stored embeddings)")
    args = parser.parse_args()
    print(f"# bench/retrain_time.py on {machine()}, {today()}, {args.db}, featurizer {args.featurizer}")
    print("| data | labels | unlabeled re-scored | featurizer | retrain seconds (each run) | hyperparameters chosen |")
    print("|---|---|---|---|---|---|")
    for kind in args.data:
        for n in args.sizes:
            rows = vector_rows(n) if kind == "vectors" else text_rows(n)
            with fresh_database(args.db) as url:
                seconds, result = time_retrain(url, rows, args.featurizer, args.runs)
            used = result.get("featurizer") or args.featurizer
            print(f"| {kind} | {n} | {result.get('rescored')} | {used} | {' / '.join(f'{t:.1f}' for t in seconds)} "
                  f"| {result.get('hyperparameters')} |", flush=True)


if __name__ == "__main__":
    main()
