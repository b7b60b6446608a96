"""Serving benchmark: the real server (gunicorn) over HTTP, annotators doing next + submit.

    .venv/bin/python bench/serve.py --n 10000 100000 1000000 --db sqlite postgresql --clients 1 8

Prints p50/p95/p99 of next and submit, labels per second in total, and how many examples got
more labels than the overlap allows (must be 0). ``--kill`` SIGKILLs the server mid-run and checks
that every label acknowledged with a 201 is in the database afterwards. ``--retrain`` serves the
annotators idle, then again while a retrain run (train + re-score the whole pool, in the web
process's job thread) is running, and prints both. ``--dashboard`` times the project dashboard
page (logged in through the login form, like a browser) on the seeded project. ``--import-rows N``
serves the annotators idle, then while an HTTP import of N new examples runs in the background
(uploaded with ``?wait=0``, followed on its status endpoint to the end), and prints both.
``--task multi_label`` seeds a multi-label project whose annotators submit sets; with two tasks
(``--task single_label multi_label``) and ``--rounds R`` the tasks alternate R times (every other
round in the opposite order), each on a fresh database and server, and the script ends with each round's ratio of the second task's
p50/p95/p99 to the first's, and their median. ``--warmup S`` serves S seconds of the same load
before each measured run and leaves them out (a new server's first requests per worker).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import time
from contextlib import contextmanager, nullcontext
from http.client import HTTPConnection
from typing import Iterator

from sqlalchemy import create_engine, func, select, text

import numpy as np

from common import OUT, fresh_database, machine, percentiles, request, seed, served, today


TASK = "single_label"  # set by --task before the annotators' processes fork


def _answer(n: int) -> dict:
    """The n-th annotation: a label, or in a multi-label project a set (one, two, or none)."""
    if TASK == "multi_label":
        return {"labels": (["pos"], ["pos", "neg"], [])[n % 3]}
    return {"label": "pos" if n % 2 else "neg"}


def annotator(host: str, port: int, project_id: int, token: str, seconds: float, out: mp.Queue, stop=None) -> None:
    conn = HTTPConnection(host, port, timeout=30)
    next_ms, submit_ms, acked, stamps = [], [], [], []
    end = time.perf_counter() + seconds
    n = 0
    try:
        while time.perf_counter() < end and not (stop is not None and stop.is_set()):
            t0 = time.perf_counter()
            status, body = request(conn, "GET", f"/api/v1/projects/{project_id}/next", token)
            t1 = time.perf_counter()
            if status == 204:  # every example labeled: what follows would time an idle server
                raise RuntimeError(f"the queue ran empty after {n} labels: the numbers cover only until then "
                                   "(a larger --n)")
            if status != 200:
                raise RuntimeError(f"next answered {status}: {body}")
            n += 1
            example_id = body["example"]["id"]
            status, body = request(conn, "POST", f"/api/v1/projects/{project_id}/labels", token, {
                "example_id": example_id, **_answer(n),
                "lease_id": body["lease"]["id"], "idempotency_key": f"{token[-8:]}-{example_id}"})
            t2 = time.perf_counter()
            if status != 201:
                raise RuntimeError(f"labels answered {status}: {body}")
            acked.append(body["label"]["id"])
            next_ms.append((t1 - t0) * 1000)
            submit_ms.append((t2 - t1) * 1000)
            stamps.append(time.time())
    except (OSError, RuntimeError) as exc:
        out.put({"next": next_ms, "submit": submit_ms, "acked": acked, "stamps": stamps, "error": str(exc)})
        return
    out.put({"next": next_ms, "submit": submit_ms, "acked": acked, "stamps": stamps, "error": None})


def drive(host: str, port: int, project_id: int, tokens: list[str], clients: int, seconds: float,
          kill_after: float | None = None, server=None, stop=None) -> dict:
    """``clients`` annotators for ``seconds`` (or until ``stop``, a multiprocessing Event, is set)."""
    queue: mp.Queue = mp.Queue()
    procs = [mp.Process(target=annotator, args=(host, port, project_id, tokens[i], seconds, queue, stop))
             for i in range(clients)]
    start = time.perf_counter()
    for p in procs:
        p.start()
    if kill_after is not None:
        time.sleep(kill_after)
        os.killpg(server.pid, signal.SIGKILL)
    results = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.perf_counter() - start
    return {
        "next": [x for r in results for x in r["next"]],
        "submit": [x for r in results for x in r["submit"]],
        "acked": [x for r in results for x in r["acked"]],
        "stamps": [x for r in results for x in r["stamps"]],
        "errors": [r["error"] for r in results if r["error"]],
        "elapsed": elapsed,
    }


def over_labeled(url: str, project_id: int, overlap: int = 1) -> int:
    from labeling.models import Label

    engine = create_engine(url)
    with engine.connect() as conn:
        per_example = select(Label.example_id, func.count().label("n")).where(
            Label.project_id == project_id, Label.value.is_not(None)).group_by(Label.example_id).subquery()
        value = conn.execute(select(func.count()).where(per_example.c.n > overlap)).scalar()
    engine.dispose()
    return value


def missing_acked(url: str, acked: list[int]) -> int:
    from labeling.models import Label

    engine = create_engine(url)
    with engine.connect() as conn:
        found = set()
        for start in range(0, len(acked), 5000):
            found.update(conn.execute(select(Label.id).where(Label.id.in_(acked[start:start + 5000]))).scalars())
    engine.dispose()
    return len(set(acked) - found)


def during(result: dict, begin: float, end: float) -> dict:
    """The samples of ``result`` whose request finished between ``begin`` and ``end`` (epoch s)."""
    keep = [begin <= t <= end for t in result["stamps"]]
    return {key: [x for x, k in zip(result[key], keep) if k] for key in ("next", "submit")}


def task_ratios(runs: dict, tasks: list[str], rounds: int) -> None:
    """Each round's ratio of the second task's p50/p95/p99 to the first's, per client count and
    request, and the median over the rounds. ``runs``: (round, task, clients) -> drive's result."""
    first, second = tasks[0], tasks[1]
    print(f"\n## {second} / {first}, p50 / p95 / p99, by round and the median over {rounds} rounds")
    for clients in sorted({key[2] for key in runs}):
        for key in ("next", "submit"):
            per_round = []
            for r in range(rounds):
                a, b = runs.get((r, first, clients)), runs.get((r, second, clients))
                if a and b and a[key] and b[key]:
                    per_round.append([np.percentile(b[key], q) / np.percentile(a[key], q) for q in (50, 95, 99)])
            if not per_round:
                continue
            rows = "  ".join(f"r{r + 1} " + "/".join(f"{x:.2f}" for x in ratio) for r, ratio in enumerate(per_round))
            median = "/".join(f"{x:.2f}" for x in np.median(per_round, axis=0))
            print(f"{clients} annotator(s) {key:6s} {rows}  median {median}")


def print_latency(sample: dict) -> None:
    print(f"  next   {percentiles(sample['next'])}")
    print(f"  submit {percentiles(sample['submit'])}")


def print_during_over_idle(window: dict, idle: dict) -> None:
    for key in ("next", "submit"):
        if idle[key] and window[key]:
            ratio = [np.percentile(window[key], q) / np.percentile(idle[key], q) for q in (50, 95, 99)]
            print(f"  {key} during / idle: p50 {ratio[0]:.2f}x  p95 {ratio[1]:.2f}x  p99 {ratio[2]:.2f}x")


def serve_during_retrain(url: str, project_id: int, tokens: list[str], clients: int, seconds: float, workers: int) -> None:
    """Idle latency, then latency while a retrain run trains and re-scores the pool."""
    import threading

    with served(url, workers=workers) as (host, port, _):
        idle = drive(host, port, project_id, tokens, clients, seconds)  # also gives the model labels to learn
        print(f"{clients} annotator(s), idle: {len(idle['acked'])} labels in {idle['elapsed']:.1f} s")
        print_latency(idle)
        busy: dict = {}
        driver = threading.Thread(target=lambda: busy.update(drive(host, port, project_id, tokens, clients, seconds * 3)))
        driver.start()
        time.sleep(1)
        conn = HTTPConnection(host, port, timeout=30)
        status, body = request(conn, "POST", f"/api/v1/projects/{project_id}/retrain", tokens[-1])
        if status != 202:
            raise RuntimeError(f"retrain answered {status}: {body}")
        begin = time.time()
        while True:
            time.sleep(0.2)
            _, run = request(conn, "GET", f"/api/v1/runs/{body['run_id']}", tokens[-1])
            if run["status"] in ("succeeded", "failed"):
                break
        end = time.time()
        driver.join()
        window = during(busy, begin, end)
        result = run.get("result") or {}
        print(f"{clients} annotator(s), during a retrain run ({run['status']}, {end - begin:.1f} s, "
              f"{result.get('n_labels')} labels, {result.get('rescored')} examples re-scored):")
        print_latency(window)
        print_during_over_idle(window, idle)


def import_file(rows: int) -> str:
    """A multipart body (on disk) holding a JSONL file of ``rows`` new examples."""
    path = OUT / f"import-{rows}.multipart"
    if not path.exists():
        with path.open("wb") as out:
            out.write(b"--hitlbench\r\nContent-Disposition: form-data; name=\"file\"; filename=\"rows.jsonl\"\r\n"
                      b"Content-Type: application/x-ndjson\r\n\r\n")
            for i in range(rows):
                out.write(b'{"external_id": "imp%d", "text": "imported text number %d about topic %d"}\n' % (i, i, i % 89))
            out.write(b"\r\n--hitlbench--\r\n")
    return str(path)


def post_import(host: str, port: int, project_id: int, token: str, rows: int) -> tuple[dict, float]:
    """Upload the file (``?wait=0``: answered once stored); returns the import and the upload's seconds."""
    import json

    path = import_file(rows)
    conn = HTTPConnection(host, port, timeout=3600)
    t0 = time.perf_counter()
    with open(path, "rb") as body:
        conn.request("POST", f"/api/v1/projects/{project_id}/examples?wait=0", body=body, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "multipart/form-data; boundary=hitlbench",
            "Content-Length": str(os.path.getsize(path))})
        response = conn.getresponse()
        answer = json.loads(response.read())
    if response.status not in (201, 202):
        raise RuntimeError(f"import answered {response.status}: {answer}")
    return answer, time.perf_counter() - t0


@contextmanager
def retrain_mark_kept_up(url: str, project_id: int, *, every: float = 2.0) -> Iterator[None]:
    """Move the project's retrain mark to its newest label every ``every`` seconds, as a retrain
    request would. The benchmark's threshold keeps retrains out (100,000), and each submit counts
    the labels since the mark up to it: without this, the count would grow with the run (a
    longer import, more labels to count: 8.6 ms a submit at 60,000, docs/benchmarks.md)."""
    import threading

    from labeling.db import make_engine

    engine = make_engine(url)  # through the file lock on SQLite, as the service's writers queue
    stop = threading.Event()

    def keep_up() -> None:
        while not stop.wait(every):
            with engine.begin() as conn:
                conn.execute(text("UPDATE projects SET retrain_label_mark = (SELECT coalesce(max(id), 0) FROM labels "
                                  "WHERE project_id = :p) WHERE id = :p"), {"p": project_id})

    thread = threading.Thread(target=keep_up, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        engine.dispose()


def serve_during_import(url: str, project_id: int, tokens: list[str], clients: int, seconds: float, workers: int,
                        rows: int) -> None:
    """Idle latency, then latency while an HTTP import of ``rows`` examples runs to its end."""
    import threading

    # No annotator, no labels to count: and its writes would be taken for annotators meeting the
    # import's lock, which then rests (labeling/bulk_writer.py).
    keeping_up = retrain_mark_kept_up(url, project_id) if clients else nullcontext()
    with served(url, workers=workers) as (host, port, _), keeping_up:
        idle = drive(host, port, project_id, tokens, clients, seconds)
        print(f"{clients} annotator(s), idle: {len(idle['acked'])} labels in {idle['elapsed']:.1f} s")
        print_latency(idle)
        busy: dict = {}
        stop = mp.Event()
        if clients:
            driver = threading.Thread(target=lambda: busy.update(drive(host, port, project_id, tokens, clients, 86400,
                                                                       stop=stop)))
            driver.start()
        begin = time.time()
        job, upload_s = post_import(host, port, project_id, tokens[-1], rows)
        conn = HTTPConnection(host, port, timeout=30)
        phases: dict[str, float] = {}
        while job["status"] not in ("succeeded", "failed"):
            time.sleep(0.5)
            _, job = request(conn, "GET", f"/api/v1/imports/{job['id']}", tokens[-1])
            phases.setdefault(job["phase"] or job["status"], time.time() - begin)
        end = time.time()
        stop.set()
        if clients:
            driver.join()
        print(f"import of {rows:,} rows through HTTP: {job['status']} in {end - begin:.1f} s "
              f"(upload {upload_s:.1f} s; phases began at {', '.join(f'{k} {v:.0f} s' for k, v in phases.items())}); "
              f"imported {job['imported']:,}, {rows / (end - begin):,.0f} rows/s")
        if job["status"] != "succeeded":
            print(f"  error: {job['error']} {job['errors'][:3]}")
        if not clients:
            return
        if "validating" in phases and "publishing" in phases:
            for name, start, stop_at in (("validating", phases["validating"], phases["publishing"]),
                                         ("publishing", phases["publishing"], end - begin)):
                part = during(busy, begin + start, begin + stop_at)
                print(f"  while {name} ({stop_at - start:.0f} s): next {percentiles(part['next'])}")
        window = during(busy, begin, end)
        print(f"{clients} annotator(s), during the import: {len(window['next'])} labels")
        print_latency(window)
        print_during_over_idle(window, idle)
        if busy.get("errors"):
            print(f"  errors: {busy['errors']}")


def time_dashboard(url: str, project_id: int, workers: int, repeats: int = 20) -> None:
    """Log in through the form like a browser, then time GET /projects/<id>/dashboard."""
    import re

    import requests

    password = login_user(url)
    label_directly(url, project_id, share=0.01)
    with served(url, workers=workers) as (host, port, _):
        web = requests.Session()
        base = f"http://{host}:{port}"
        form = web.get(f"{base}/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        web.post(f"{base}/login", data={"name": "benchreviewer", "password": password, "csrf_token": csrf},
                 allow_redirects=False).raise_for_status()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            page = web.get(f"{base}/projects/{project_id}/dashboard")
            times.append((time.perf_counter() - t0) * 1000)
            if page.status_code != 200 or "Learning curve" not in page.text:
                raise RuntimeError(f"dashboard answered {page.status_code}")
        print(f"dashboard page: {percentiles(times)}")


def label_directly(url: str, project_id: int, *, share: float) -> None:
    """Label a share of the pool in bulk in the database (as an import with labels would), so
    the dashboard has progress, per-day and per-annotator numbers to count."""
    engine = create_engine(url)
    with engine.begin() as conn:
        n = conn.execute(text("SELECT count(*) FROM examples WHERE project_id = :p"), {"p": project_id}).scalar()
        last = conn.execute(text("SELECT min(id) FROM examples WHERE project_id = :p"), {"p": project_id}).scalar() + int(n * share)
        annotator = conn.execute(text("SELECT id FROM users WHERE name = 'annotator0'")).scalar()
        conn.execute(text("INSERT INTO labels (project_id, example_id, annotator_id, value, source, created_at) "
                          "SELECT project_id, id, :a, CASE WHEN id % 2 = 0 THEN 'pos' ELSE 'neg' END, 'annotator', created_at "
                          "FROM examples WHERE project_id = :p AND id < :last"), {"a": annotator, "p": project_id, "last": last})
        conn.execute(text("UPDATE examples SET n_labels = 1, needs_labels = false WHERE project_id = :p AND id < :last"),
                     {"p": project_id, "last": last})
    engine.dispose()
    print(f"labeled {share:.0%} of the pool in the database")


def login_user(url: str) -> str:
    from labeling import users
    from labeling.db import make_engine, make_sessionmaker, utcnow

    password = "bench-password-123"
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        users.create_user(s, "benchreviewer", "reviewer", password=password, now=utcnow())
        s.commit()
    engine.dispose()
    return password


def serve_idle(url: str, project_id: int, tokens: list[str], clients: int, args) -> dict:
    """``clients`` annotators on a fresh server for ``args.seconds`` (after ``args.warmup``, not counted)."""
    with served(url, workers=args.workers) as (host, port, server):
        if args.warmup:
            drive(host, port, project_id, tokens, clients, args.warmup)
        result = drive(host, port, project_id, tokens, clients, args.seconds,
                       kill_after=args.seconds / 2 if args.kill else None, server=server)
    rate = len(result["acked"]) / result["elapsed"]
    print(f"{clients} annotator(s): {len(result['acked'])} labels in {result['elapsed']:.1f} s = {rate:.1f} labels/s")
    print_latency(result)
    print(f"  examples over the overlap: {over_labeled(url, project_id)}")
    if args.kill:
        print(f"  after SIGKILL: {missing_acked(url, result['acked'])} acknowledged labels missing "
              f"(of {len(result['acked'])}); clients saw: {sorted(set(e[:60] for e in result['errors']))}")
    elif result["errors"]:
        print(f"  errors: {result['errors']}")
    return result


def run_one(url: str, project_id: int, tokens: list[str], args) -> dict:
    """Every measurement asked for, on one seeded project; returns the idle runs by client count."""
    runs = {}
    if args.dashboard:
        time_dashboard(url, project_id, args.workers)
        return runs
    for clients in args.clients:
        if args.import_rows:
            serve_during_import(url, project_id, tokens, clients, args.seconds, args.workers, args.import_rows)
        elif args.retrain:
            serve_during_retrain(url, project_id, tokens, clients, args.seconds, args.workers)
        else:
            runs[clients] = serve_idle(url, project_id, tokens, clients, args)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[10000])
    parser.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=0, help="seconds served before each measured run, not counted")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--kill", action="store_true", help="SIGKILL the server mid-run and check durability")
    parser.add_argument("--retrain", action="store_true", help="latency idle and while a retrain run re-scores the pool")
    parser.add_argument("--dashboard", action="store_true", help="time the dashboard page of the seeded project")
    parser.add_argument("--import-rows", type=int, default=0,
                        help="latency idle and while an HTTP import of this many rows runs (clients 0: the import alone)")
    parser.add_argument("--task", nargs="+", default=["single_label"], choices=["single_label", "multi_label"],
                        help="the seeded project's task (multi_label: annotators submit sets); several alternate")
    parser.add_argument("--rounds", type=int, default=1, help="times the tasks are run, alternating")
    args = parser.parse_args()
    global TASK
    print(f"# bench/serve.py on {machine()}, {today()}; gunicorn sync workers={args.workers}; "
          f"task {' '.join(args.task)}; {args.rounds} round(s); {args.seconds:g} s (warm-up {args.warmup:g} s)")
    for kind in args.db:
        for n in args.n:
            runs = {}
            for r in range(args.rounds):
                # Every other round in the opposite order (ABBA): a run does not always follow the same task.
                for task in (args.task if r % 2 == 0 else args.task[::-1]):
                    TASK = task  # before the annotators' processes fork
                    with fresh_database(kind) as url:
                        t0 = time.perf_counter()
                        # Retraining is measured on its own (--retrain); here the queue is served idle.
                        project_id, tokens = seed(url, n=n, settings={"retrain_threshold": 100000, "task": task})
                        print(f"\n## {kind}, {n:,} examples, {task}, round {r + 1} "
                              f"(seeded in {time.perf_counter() - t0:.1f} s)")
                        for clients, result in run_one(url, project_id, tokens, args).items():
                            runs[r, task, clients] = result
            if len(args.task) > 1 and runs:
                task_ratios(runs, args.task, args.rounds)


if __name__ == "__main__":
    main()
