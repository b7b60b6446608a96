"""Summarize a trace of bench/trace_sqlite/sitecustomize.py: the import's transactions, the
checkpoints, and the annotator's requests idle and during the import, split by where the time
went (the slowest 3% of requests in particular).

    ../.venv/bin/python trace_sqlite/summary.py /tmp/trace
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np

TX = ("pid", "role", "t", "flock", "begin", "hold", "commit", "sql", "n", "end", "cpu", "rq")
REQ = ("pid", "nice", "t", "path", "total", "flock", "begin", "commit", "ckpt", "sql", "n", "nf")


def load(directory: str) -> tuple[list[dict], list[dict], list[dict]]:
    tx, ck, req = [], [], []
    for name in glob.glob(os.path.join(directory, "*.tsv")):
        for line in open(name):
            kind, *fields = line.rstrip("\n").split("\t")
            if kind == "tx":
                tx.append({k: (v if k == "end" else float(v)) for k, v in zip(TX, fields)})
            elif kind == "ck":
                ck.append(dict(zip(("pid", "role", "t", "ms"), map(float, fields))))
            elif kind == "req":
                req.append({k: (v if k == "path" else float(v)) for k, v in zip(REQ, fields)})
    return tx, ck, req


def pct(values: list[float]) -> str:
    v = np.asarray(values)
    return " ".join(f"p{q}={np.percentile(v, q):.2f}" for q in (50, 90, 99, 99.9)) + f" max={v.max():.2f} n={len(v)}"


def main(directory: str) -> None:
    tx, ck, req = load(directory)
    writes = [x for x in tx if x["role"] > 0 and x["n"] >= 3]  # the import's chunks (merge steps: 1 statement)
    t0, t1 = min(x["t"] for x in writes), max(x["t"] for x in writes)
    print(f"import: {len(writes)} chunk transactions over {t1 - t0:.1f} s, "
          f"{sum(x['hold'] for x in writes) / 1000 / (t1 - t0):.0%} of the time holding the lock")
    for key in ("flock", "hold", "commit", "sql", "cpu", "rq"):
        if all(key in x for x in writes):
            print(f"  chunk {key:6s} {pct([x[key] for x in writes])}")
    steps = [x for x in tx if x["role"] > 0 and x["n"] == 1]
    if steps:
        print(f"  merge steps hold {pct([x['hold'] for x in steps])}")
    for role, name in ((10, "import"), (0, "other")):
        times = [c["ms"] for c in ck if c["role"] == role]
        if times:
            print(f"  checkpoints by the {name} connections: {pct(times)}")
    for path in ("next", "labels"):
        for name, keep in (("idle", lambda r: r["t"] < t0 - 1), ("during", lambda r: t0 <= r["t"] <= t1)):
            rows = [r for r in req if r["path"] == path and keep(r)]
            if not rows:
                continue
            print(f"{path} {name}: {pct([r['total'] for r in rows])}")
            for key in ("flock", "commit", "ckpt", "sql"):
                print(f"    {key:6s} {pct([r[key] for r in rows])}")
            cut = np.percentile([r["total"] for r in rows], 97)
            tail = [r for r in rows if r["total"] >= cut]
            parts = {key: np.mean([r[key] for r in tail]) for key in ("total", "flock", "commit", "ckpt", "sql")}
            print(f"    slowest 3% (>= {cut:.1f} ms): " + ", ".join(f"{k} {v:.1f}" for k, v in parts.items())
                  + f", Python and HTTP {parts['total'] - parts['flock'] - parts['commit'] - parts['ckpt'] - parts['sql']:.1f}")


if __name__ == "__main__":
    main(sys.argv[1])
