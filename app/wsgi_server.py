"""Run the app under gunicorn from Python, for ``hitl serve``."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _Server(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):  # type: ignore[no-untyped-def]
        from app import create_app

        return create_app()


def serve(*, host: str, port: int, workers: int) -> None:
    # sync workers: gthread with SQLAlchemy measured 10x worse tail latency here (STACK.md).
    _Server({"bind": f"{host}:{port}", "workers": workers, "worker_class": "sync", "timeout": 120,
             "accesslog": None, "graceful_timeout": 10}).run()
