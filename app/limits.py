"""Bounds on what a request may send: a small body everywhere but where files are imported,
refused from its ``Content-Length`` before it is read; JSON nested too deep is bad input, not a
crash of the parser."""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, current_app, session
from flask.json.provider import DefaultJSONProvider

# The routes that take a file or a batch of examples; every other body is a form or a small JSON.
BULK_ENDPOINTS = frozenset({"api.import_project_examples", "api.predict", "ui.import_page"})


class BoundedRequest(Request):
    @property
    def max_content_length(self) -> int | None:  # type: ignore[override]
        # Read by werkzeug before the body is, so before CSRF checks or a view parse the form.
        if not current_app:
            return None
        return current_app.config["MAX_IMPORT_BYTES" if self._may_send_much() else "MAX_REQUEST_BYTES"]

    def _may_send_much(self) -> bool:
        if self.endpoint not in BULK_ENDPOINTS:
            return False
        # API views check the token before they read the body; the import page's form is read
        # first (by the CSRF check), so only a logged-in session may send it large.
        return self.endpoint.startswith("api.") or "_user_id" in session


class BoundedJSONProvider(DefaultJSONProvider):
    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        try:
            return super().loads(s, **kwargs)
        except RecursionError:  # get_json() turns a ValueError into "not JSON"
            raise ValueError("JSON nested too deeply") from None


def init_limits(app: Flask) -> None:
    app.request_class = BoundedRequest
    app.json = BoundedJSONProvider(app)
