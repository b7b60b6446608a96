"""The data browser at scale: latency of a filtered page of ``GET /api/v1/projects/{id}/examples``
on a project of ``--n`` examples (a tenth labeled by eight annotators, every example scored, a few
hundred open flags), through the served app.

    cd bench && ../.venv/bin/python browse.py --n 1000000 --db sqlite
"""

from __future__ import annotations

import argparse
import os
import time
from http.client import HTTPConnection
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import insert, select, text

from common import fresh_database, machine, request, seed, served, today

FILTERS = {
    "no filter": {},
    "text, common (topic 5)": {"q": "topic 5 "},
    "label pos": {"label": "pos"},
    "annotator annotator3": {"annotator": "annotator3"},
    "labeled": {"status": "labeled"},
    "unlabeled": {"status": "unlabeled"},
    "flagged (300 open flags)": {"status": "flagged"},
    "confidence 0.5-0.6": {"min_confidence": "0.5", "max_confidence": "0.6"},
    "label pos + confidence < 0.55": {"label": "pos", "max_confidence": "0.55"},
}


def add_labels_and_flags(url: str, project_id: int, *, every: int = 10, flags: int = 300) -> None:
    from labeling.db import make_engine, utcnow
    from labeling.models import Example, Label, LabelFlag, User

    engine = make_engine(url)
    now = utcnow()
    rng = np.random.default_rng(1)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # the service's statement timeout is for requests
            conn.execute(text("SET LOCAL statement_timeout = 0"))
        annotators = list(conn.scalars(select(User.id).where(User.name.like("annotator%")).order_by(User.id)))
        conn.execute(text("UPDATE examples SET confidence = random_key WHERE project_id = :p"), {"p": project_id})
        ids = list(conn.scalars(select(Example.id).where(Example.project_id == project_id).order_by(Example.id)))[::every]
        for start in range(0, len(ids), 20000):
            part = ids[start:start + 20000]
            conn.execute(insert(Label), [{"project_id": project_id, "example_id": e, "annotator_id": annotators[i % len(annotators)],
                                          "value": "pos" if rng.random() < 0.5 else "neg", "created_at": now, "source": "annotator"}
                                         for i, e in enumerate(part)])
        conn.execute(text("UPDATE examples SET n_labels = 1, needs_labels = false WHERE project_id = :p AND id IN "
                          "(SELECT example_id FROM labels WHERE project_id = :p)"), {"p": project_id})
        labels = conn.execute(select(Label.id, Label.example_id, Label.value).where(Label.project_id == project_id)).all()
        chosen = rng.choice(len(labels), size=min(flags, len(labels)), replace=False)
        conn.execute(insert(LabelFlag), [{"project_id": project_id, "label_id": labels[i].id, "example_id": labels[i].example_id,
                                          "given": labels[i].value, "suggested": "neg" if labels[i].value == "pos" else "pos",
                                          "score": float(rng.random()), "reason": "model_disagrees", "status": "open",
                                          "created_at": now} for i in chosen])
    if engine.dialect.name == "postgresql":  # what autovacuum does after a bulk load, at a time of its own
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("SET statement_timeout = 0"))
            conn.execute(text("VACUUM ANALYZE"))  # also merges the trigram indexes' pending lists
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--offset", type=int, default=0)
    args = parser.parse_args()
    print(f"# bench/browse.py on {machine()}, {today()}: {args.n:,} examples on {args.db}, {args.repeat} requests "
          f"per filter, offset {args.offset}, limit 50")
    with fresh_database(args.db) as url:
        started = time.perf_counter()
        project_id, tokens = seed(url, n=args.n)
        add_labels_and_flags(url, project_id)
        print(f"seeded in {time.perf_counter() - started:.0f} s")
        with served(url, workers=2) as (host, port, _):
            conn = HTTPConnection(host, port, timeout=120)
            print(f"load average before the requests: {os.getloadavg()[0]:.1f}")
            print("| filter | matches on the page | total (exact?) | p50 ms | p95 ms |")
            print("|---|---|---|---|---|")
            rare = {"text, one match": {"q": f"number {args.n // 2 + 7} about"},
                    "text of 2 characters, no match": {"q": "zq"},
                    "text of 1 character, no match": {"q": "z"},
                    "text of 2 characters, common": {"q": "ab"}}
            for name, params in {**FILTERS, **rare}.items():
                path = f"/api/v1/projects/{project_id}/examples?" + urlencode({**params, "limit": 50, "offset": args.offset})
                times, body = [], None
                for _ in range(args.repeat):
                    t = time.perf_counter()
                    status, body = request(conn, "GET", path, tokens[-1])
                    times.append((time.perf_counter() - t) * 1000)
                    assert status == 200, (status, body)
                p50, p95 = np.percentile(times, [50, 95])
                print(f"| {name} | {len(body['examples'])} | {body['total']:,} ({'yes' if body['total_exact'] else 'capped'}) "
                      f"| {p50:.0f} | {p95:.0f} |", flush=True)
            print(f"load average after the requests: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
