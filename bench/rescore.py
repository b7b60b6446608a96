"""Re-scoring cost: features + predict_proba + strategy + bulk priority writes, one thread.

    .venv/bin/python bench/rescore.py --pool vectors:1000000 text:100000 [--db sqlite postgresql] [--typical-picks]

``vectors:N`` is N examples with 50 numeric features; ``text:N`` is N short texts (TF-IDF).
``--typical-picks``: the project weighs its diverse picks by typicality (``typical_picks``), whose
cost is printed beside the default's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from common import fresh_database, machine, seed, today


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pool", nargs="+", default=["vectors:100000", "text:100000"])
    parser.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"])
    parser.add_argument("--typical-picks", action="store_true", help="also time the pool re-scored with typical_picks on")
    args = parser.parse_args()
    from active_learning.models import make_model
    from labeling.db import make_engine, make_sessionmaker
    from labeling.models import Project
    from labeling.rescoring import rescore_pool

    print(f"# bench/rescore.py on {machine()}, {today()}; one thread")
    for kind in args.db:
        for spec in args.pool:
            what, n = spec.split(":")
            n = int(n)
            with fresh_database(kind) as url:
                project_id, _ = seed(url, n=n, n_users=0, dim=50 if what == "vectors" else 0, texts=what == "text")
                rng = np.random.default_rng(0)
                if what == "vectors":
                    model = make_model("features").fit(rng.normal(size=(500, 50)), rng.integers(0, 2, 500).astype(str))
                    input_kind = "vector"
                else:
                    texts = [f"example text number {i} about topic {i % 97}" for i in range(500)]
                    model = make_model("tfidf").fit(texts, [str(i % 2) for i in range(500)])
                    input_kind = "text"
                engine = make_engine(url, sqlite_synchronous="NORMAL")  # as in the run process (app/jobs.py)
                for typical in ([False, True] if args.typical_picks else [False]):
                    with make_sessionmaker(engine)() as session, threadpool_limits(1):
                        project = session.get(Project, project_id)
                        project.settings = {**project.settings, "typical_picks": typical}
                        session.commit()
                        t0 = time.perf_counter()
                        # As a model whose labels look ambiguous (out-of-fold kappa 0), so the weighing runs.
                        scored = rescore_pool(session, project, model, 1, kind=input_kind,
                                              version_metrics={"out_of_fold_kappa": 0.0})
                        took = time.perf_counter() - t0
                    print(f"{kind} {what} pool of {n:,}{', typical picks' if typical else ''}: {scored:,} re-scored "
                          f"in {took:.1f} s ({scored / took:,.0f}/s)", flush=True)
                engine.dispose()


if __name__ == "__main__":
    main()
