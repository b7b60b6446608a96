"""What the browser's text index (migration 0010) costs an import's writes: ``ImportWriter`` in
small transactions, on the schema at migration 0009 and at head, alternated; process CPU (on
SQLite the database works in this process) and wall time.

    cd bench && ../.venv/bin/python text_index_cost.py --n 100000 --chunk 100 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import time
import uuid

import numpy as np

from common import OUT, machine, today


def run(revision: str, n: int, chunk: int) -> tuple[float, float]:
    from labeling import projects
    from labeling.db import make_engine, make_sessionmaker, utcnow
    from labeling.examples import ImportWriter, count_new_examples
    from labeling.migrate import upgrade

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"cost-{uuid.uuid4().hex[:8]}.db"
    upgrade(f"sqlite:///{path}", revision)
    engine = make_engine(f"sqlite:///{path}")
    rows = [{"external_id": f"row-{i}", "data": {"text": f"a short review number {i} of topic {i % 50}"},
             "features": None, "label": "pos" if i % 3 else "neg"} for i in range(n)]
    with make_sessionmaker(engine)() as s:
        project = projects.create_project(s, "cost", ["pos", "neg"], {}, now=utcnow())
        s.commit()
        writer = ImportWriter(s, project, np.random.default_rng(0), now=utcnow(), source="import",
                              update_duplicates=False)
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, n, chunk):
            writer.write(rows[start:start + chunk])
            count_new_examples(s, project.id, len(rows[start:start + chunk]))
            s.commit()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    engine.dispose()
    for suffix in ("", "-wal", "-shm", ".lock"):
        (OUT / (path.name + suffix)).unlink(missing_ok=True)
    return cpu, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print(f"# bench/text_index_cost.py on {machine()}, {today()}: {args.n:,} rows, {args.chunk}-row transactions")
    for _ in range(args.rounds):
        for name, revision in (("without the text index (0009)", "0009"), ("with it (head)", "head")):
            cpu, wall = run(revision, args.n, args.chunk)
            print(f"{name}: CPU {cpu:.1f} s, wall {wall:.1f} s, load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
