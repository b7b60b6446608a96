"""``hitl serve``: run gunicorn in a fresh process with the right environment."""

from __future__ import annotations

import os
import sys
import tempfile


def serve(*, host: str, port: int, workers: int) -> None:
    """Replace this process with gunicorn (sync workers: gthread with SQLAlchemy measured ten
    times worse tail latency on these machines, STACK.md)."""
    env = dict(os.environ)
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics adds up every worker through this folder; it must exist before they start, and
        # gunicorn's on_exit hook (app/gunicorn_conf.py) removes it when the server stops.
        folder = tempfile.mkdtemp(prefix=f"hitl-prometheus-{port}-")
        env["PROMETHEUS_MULTIPROC_DIR"] = env["HITL_OWNED_METRICS_DIR"] = folder
    print(f"serving on http://{host}:{port} (Ctrl-C stops)", flush=True)
    args = [sys.executable, "-m", "gunicorn", "app.wsgi:app", "--bind", f"{host}:{port}", "--workers", str(workers),
            "--worker-class", "sync", "--timeout", "120", "--graceful-timeout", "10",
            "--config", "python:app.gunicorn_conf"]
    os.execve(sys.executable, args, env)
