"""The labeling page at scale: latency of an annotator's keypress in the browser's page (the
htmx ``POST .../label/submit`` that answers with the next example and the progress line) and of
opening the page, on a project of ``--n`` examples with a label on every ``--every``-th one.

    cd bench && ../.venv/bin/python label_page.py --n 1000000 --every 2 --db sqlite

Each keypress's answer carries the progress line ("N / M labeled · K by you today"), so whatever
those counts cost is paid on every label.
"""

from __future__ import annotations

import argparse
import re
import time

import numpy as np
import requests

from browse import add_labels_and_flags
from common import fresh_database, machine, seed, served, today

PASSWORD = "correct horse battery"


def prepare(url: str, project_id: int) -> None:
    """A user who logs in with a password; the seeded labels count as trained on (the retrain mark
    past them), so no retrain runs beside the timed requests."""
    from sqlalchemy import text

    from labeling import users
    from labeling.db import make_engine, make_sessionmaker, utcnow

    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        users.create_user(s, "pageuser", "annotator", password=PASSWORD, now=utcnow())
        s.execute(text("UPDATE projects SET retrain_label_mark = (SELECT max(id) FROM labels WHERE project_id = :p) "
                       "WHERE id = :p"), {"p": project_id})
        s.commit()
    engine.dispose()


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    if found is None:
        raise RuntimeError(f"no {name} in the page: {html[:300]}")
    return found.group(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=2, help="a label on every this-many-th example (the rest to label)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--labels", type=int, default=100, help="keypresses timed")
    args = parser.parse_args()
    print(f"# bench/label_page.py on {machine()}, {today()}: {args.n:,} examples on {args.db}, a label on every "
          f"{args.every}, {args.labels} keypresses")
    with fresh_database(args.db) as url:
        started = time.perf_counter()
        project_id, _ = seed(url, n=args.n, settings={"retrain_threshold": 100000})
        add_labels_and_flags(url, project_id, every=args.every)
        prepare(url, project_id)
        print(f"seeded in {time.perf_counter() - started:.0f} s")
        with served(url, workers=2) as (host, port, _):
            base = f"http://{host}:{port}"
            web = requests.Session()
            login = web.get(f"{base}/login").text
            web.post(f"{base}/login", data={"name": "pageuser", "password": PASSWORD,
                                            "csrf_token": field(login, "csrf_token")}).raise_for_status()
            opens, presses = [], []
            for _ in range(args.labels):
                t = time.perf_counter()
                page = web.get(f"{base}/projects/{project_id}/label")
                opens.append((time.perf_counter() - t) * 1000)
                page.raise_for_status()
                csrf = re.search(r'"X-CSRFToken": "([^"]+)"', page.text).group(1)
                form = {"example_id": field(page.text, "example_id"), "lease_id": field(page.text, "lease_id"),
                        "idempotency_key": field(page.text, "idempotency_key"), "label": "pos"}
                t = time.perf_counter()
                answer = web.post(f"{base}/projects/{project_id}/label/submit", data=form,
                                  headers={"X-CSRFToken": csrf, "HX-Request": "true"})
                presses.append((time.perf_counter() - t) * 1000)
                if answer.status_code != 200 or "by you today" not in answer.text:
                    raise RuntimeError(f"the keypress answered {answer.status_code}: {answer.text[:300]}")
            print("| request | p50 ms | p95 ms |")
            print("|---|---|---|")
            for name, times in (("open the labeling page (GET)", opens), ("a keypress (POST .../label/submit)", presses)):
                p50, p95 = np.percentile(times, [50, 95])
                print(f"| {name} | {p50:.0f} | {p95:.0f} |", flush=True)


if __name__ == "__main__":
    main()
