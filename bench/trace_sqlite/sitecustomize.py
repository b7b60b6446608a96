"""Bench-only tracing of SQLite write transactions and Flask requests (docs/benchmarks.md,
"Imports in the background"): put this directory first on PYTHONPATH and set HITL_TRACE_DIR,

    cd bench && HITL_TRACE_DIR=/tmp/trace PYTHONPATH=$PWD/trace_sqlite:$PWD/.. ../.venv/bin/python serve.py ... --import-rows 200000
    ../.venv/bin/python trace_sqlite/summary.py /tmp/trace

Active only in the server's processes (LABELING_DATABASE_URL set). Writes TSV lines to <dir>/<pid>.tsv:
  tx  pid role t_begin flock_ms begin_ms hold_ms commit_ms sql_ms n_sql end cpu_ms runqueue_ms
  ck  pid role t ms                       (a checkpoint)
  gc  pid role t ms generation in_tx      (a collection over 0.5 ms)
  req pid nice t path total_ms flock_ms begin_ms commit_ms ckpt_ms sql_ms n_sql n_flock
role is 10 in the import's process, 0 elsewhere. sql_ms times ``execute`` only: what a statement
does when its rows are fetched (the end of an INSERT ... RETURNING) is outside it.
"""
import os

_DIR = os.environ.get("HITL_TRACE_DIR")
if _DIR and os.environ.get("LABELING_DATABASE_URL"):
    import atexit
    import fcntl
    import sqlite3
    import threading
    import time

    _pc, _wall = time.perf_counter, time.time
    _local = threading.local()
    _lines: list = []
    _last = [_pc()]
    _lock = threading.Lock()

    def _acc():
        a = getattr(_local, "acc", None)
        if a is None:
            a = _local.acc = {"flock": 0.0, "begin": 0.0, "commit": 0.0, "ckpt": 0.0, "sql": 0.0, "n": 0, "nf": 0}
        return a

    def _tx():
        t = getattr(_local, "tx", None)
        if t is None:
            t = _local.tx = {}
        return t

    def _emit(line):
        with _lock:
            _lines.append(line)
            if len(_lines) > 300 or _pc() - _last[0] > 1.0:
                _flush_locked()

    def _flush_locked():
        if _lines:
            with open(os.path.join(_DIR, f"{os.getpid()}.tsv"), "a") as f:
                f.write("\n".join(_lines) + "\n")
            _lines.clear()
        _last[0] = _pc()

    def _flush():
        with _lock:
            _flush_locked()

    atexit.register(_flush)

    _flock = fcntl.flock

    def flock(fd, op):
        if op == fcntl.LOCK_EX:
            t0 = _pc()
            _flock(fd, op)
            dt = (_pc() - t0) * 1000
            _acc()["flock"] += dt
            _acc()["nf"] += 1
            _tx()["flock"] = dt
            return None
        return _flock(fd, op)

    fcntl.flock = flock

    import gc

    _gc_t0 = [0.0]

    def _gc_cb(phase, info):
        if phase == "start":
            _gc_t0[0] = _pc()
        else:
            dt = (_pc() - _gc_t0[0]) * 1000
            if dt > 0.5:
                _emit(f"gc\t{os.getpid()}\t{_role()}\t{_wall() - dt / 1000:.6f}\t{dt:.3f}\t{info.get('generation')}\t{'t0' in _tx()}")

    gc.callbacks.append(_gc_cb)

    def _role():
        import multiprocessing
        return 10 if os.nice(0) > 0 or multiprocessing.current_process().name.startswith("hitl-imp") else 0

    def _sched():
        try:
            with open(f"/proc/thread-self/schedstat") as f:
                a, b, _ = f.read().split()
            return int(a) / 1e6, int(b) / 1e6
        except Exception:
            return 0.0, 0.0

    def _classify(sql, dt):
        a, t = _acc(), _tx()
        s = sql.lstrip()[:24].upper()
        if s.startswith("BEGIN IMMEDIATE"):
            a["begin"] += dt
            t.update(begin=dt, t0=_pc(), wall=_wall(), sql=0.0, n=0, sched=_sched())
            t.setdefault("flock", 0.0)
        elif s.startswith("PRAGMA WAL_CHECKPOINT"):
            a["ckpt"] += dt
            _emit(f"ck\t{os.getpid()}\t{_role()}\t{_wall() - dt / 1000:.6f}\t{dt:.3f}")
        elif s.startswith("BEGIN"):
            a["sql"] += dt
        else:
            a["sql"] += dt
            a["n"] += 1
            if "t0" in t:
                t["sql"] += dt
                t["n"] += 1

    def _timed(run, sql, *args):
        """``run(sql, *args)``, its duration classified by the statement."""
        t0 = _pc()
        try:
            return run(sql, *args)
        finally:
            _classify(sql, (_pc() - t0) * 1000)

    class Cursor(sqlite3.Cursor):
        def execute(self, sql, *args):
            return _timed(super().execute, sql, *args)

        def executemany(self, sql, *args):
            return _timed(super().executemany, sql, *args)

    class Connection(sqlite3.Connection):
        def cursor(self, factory=Cursor):
            return super().cursor(factory)

        def execute(self, sql, *args):
            return _timed(super().execute, sql, *args)

        def _end(self, name):
            t0 = _pc()
            try:
                return getattr(super(), name)()
            finally:
                end = _pc()
                dt = (end - t0) * 1000
                _acc()["commit"] += dt
                t = _tx()
                if "t0" in t:
                    c1, r1 = _sched()
                    c0, r0 = t["sched"]
                    _emit(f"tx\t{os.getpid()}\t{_role()}\t{t['wall']:.6f}\t{t['flock']:.3f}\t{t['begin']:.3f}\t"
                          f"{(end - t['t0']) * 1000:.3f}\t{dt:.3f}\t{t['sql']:.3f}\t{t['n']}\t{name}\t{c1 - c0:.3f}\t{r1 - r0:.3f}")
                _local.tx = {}

        def commit(self):
            return self._end("commit")

        def rollback(self):
            return self._end("rollback")

    _connect = sqlite3.connect

    def connect(*args, **kwargs):
        kwargs.setdefault("factory", Connection)
        return _connect(*args, **kwargs)

    sqlite3.connect = connect
    import sqlite3.dbapi2
    sqlite3.dbapi2.connect = connect

    try:
        import flask

        _wsgi_app = flask.Flask.wsgi_app

        def wsgi_app(self, environ, start_response):
            _local.acc = None
            t0, w0 = _pc(), _wall()
            try:
                return _wsgi_app(self, environ, start_response)
            finally:
                a = _acc()
                path = environ.get("PATH_INFO", "")
                name = path.rsplit("/", 1)[-1] if "/projects/" in path else path
                _emit(f"req\t{os.getpid()}\t{os.nice(0)}\t{w0:.6f}\t{name}\t{(_pc() - t0) * 1000:.3f}\t{a['flock']:.3f}\t"
                      f"{a['begin']:.3f}\t{a['commit']:.3f}\t{a['ckpt']:.3f}\t{a['sql']:.3f}\t{a['n']}\t{a['nf']}")

        flask.Flask.wsgi_app = wsgi_app
    except ImportError:
        pass
