"""Small helpers shared by the API views: body parsing and pagination."""

from __future__ import annotations

from typing import Any

from flask import request

from labeling.errors import InvalidInput, Problem

MAX_LIMIT = 1000


def json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput.one("the request body must be a JSON object", field="body")
    return body


def pagination() -> tuple[int, int]:
    problems = []
    values = {}
    for name, default, hi in (("limit", 100, MAX_LIMIT), ("offset", 0, 10**12)):
        raw = request.args.get(name)
        if raw is None:
            values[name] = default
            continue
        if not raw.isdigit() or not (1 if name == "limit" else 0) <= int(raw) <= hi:
            problems.append(Problem(f"must be a whole number from {1 if name == 'limit' else 0} to {hi}", field=name))
        else:
            values[name] = int(raw)
    if problems:
        raise InvalidInput("invalid pagination", problems)
    return values["limit"], values["offset"]
