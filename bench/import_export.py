"""Import and export through the served API: time and the server's peak memory.

    .venv/bin/python bench/import_export.py --n 100000 1000000 [--db sqlite postgresql]

Writes a JSONL file of N short labeled texts, uploads it (multipart) to
``POST /api/v1/projects/{id}/examples``, follows the import to its end (a long one answers 202 and
runs in the background), then streams ``GET .../export?format=jsonl`` (gold rows)
to nowhere. Memory is the resident set of the gunicorn worker processes, sampled every 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
import uuid
from http.client import HTTPConnection

from common import OUT, admin_token, fresh_database, machine, request, served, today


def rss_mb(pid: int) -> float:
    """Resident memory of the server's session (its workers, and their import and run processes), in MB."""
    out = subprocess.run(["ps", "-o", "rss=", "-s", str(pid)], capture_output=True, text=True).stdout
    return sum(int(x) for x in out.split()) / 1024


class PeakMemory:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()
        self.base = rss_mb(pid)
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self.stop.wait(0.05):
            self.peak = max(self.peak, rss_mb(self.pid))

    def __enter__(self) -> "PeakMemory":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def write_file(n: int) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"io-{n}.jsonl"
    if not path.exists():
        with path.open("w") as f:
            for i in range(n):
                f.write(json.dumps({"external_id": f"row-{i}", "text": f"a short review number {i} of topic {i % 50}",
                                    "label": "pos" if i % 3 else "neg"}) + "\n")
    return str(path)


def upload(host: str, port: int, token: str, project_id: int, path: str) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    size = os.path.getsize(path)
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{os.path.basename(path)}\"\r\n"
            "Content-Type: application/x-ndjson\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    conn = HTTPConnection(host, port, timeout=3600)
    conn.putrequest("POST", f"/api/v1/projects/{project_id}/examples")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(len(head) + size + len(tail)))
    conn.endheaders()
    conn.send(head)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            conn.send(chunk)
    conn.send(tail)
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[100000])
    parser.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "postgresql"])
    parser.add_argument("--import-only", action="store_true",
                        help="time the import only (no wait for the training run it queues, no export)")
    args = parser.parse_args()
    print(f"# bench/io.py on {machine()}, {today()}; gunicorn, 1 worker")
    for kind in args.db:
        for n in args.n:
            path = write_file(n)
            with fresh_database(kind) as url:
                token = admin_token(url)
                # The import queues a training run (its labels, or the cold start): it runs in the
                # background and is waited for before the export is timed.
                with served(url, workers=1, env={"LABELING_JOBS": "thread"}) as (host, port, server):
                    conn = HTTPConnection(host, port, timeout=3600)
                    _, body = request(conn, "POST", "/api/v1/projects", token, {
                        "name": "io", "labels": ["pos", "neg"], "settings": {"retrain_threshold": 100000}})
                    project_id = body["id"]
                    with PeakMemory(server.pid) as mem:
                        t0 = time.perf_counter()
                        status, body = upload(host, port, token, project_id, path)
                        while status == 202 or body.get("status") in ("queued", "running"):  # running in the background
                            time.sleep(0.5)
                            status, body = request(conn, "GET", f"/api/v1/imports/{body['id']}", token)
                        took = time.perf_counter() - t0
                        if "imported" in body and "status_url" not in body:
                            body = {k: body[k] for k in ("status", "imported", "duplicates", "labels") if k in body}
                    print(f"{kind} import {n:,} rows: {took:.1f} s ({n / took:,.0f} rows/s), status {status} {body}, "
                          f"server memory {mem.base:.0f} -> peak {mem.peak:.0f} MB", flush=True)
                    if args.import_only:
                        continue
                    while True:
                        _, runs = request(conn, "GET", f"/api/v1/projects/{project_id}/runs?limit=1", token)
                        if not runs["runs"] or runs["runs"][0]["status"] in ("succeeded", "failed"):
                            break
                        time.sleep(1)
                    with PeakMemory(server.pid) as mem:
                        t0 = time.perf_counter()
                        conn = HTTPConnection(host, port, timeout=3600)
                        conn.request("GET", f"/api/v1/projects/{project_id}/export?format=jsonl",
                                     headers={"Authorization": f"Bearer {token}"})
                        response = conn.getresponse()
                        size = 0
                        while chunk := response.read(1 << 20):
                            size += len(chunk)
                        took = time.perf_counter() - t0
                    print(f"{kind} export {n:,} labeled rows: {took:.1f} s, {size / 1e6:.0f} MB, "
                          f"server memory {mem.base:.0f} -> peak {mem.peak:.0f} MB (+{mem.peak - mem.base:.0f})")


if __name__ == "__main__":
    main()
