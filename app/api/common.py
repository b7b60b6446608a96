"""Small helpers shared by the API views: body parsing and pagination."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from labeling.errors import InvalidInput, Problem

MAX_LIMIT = 1000


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 422 saying what is wrong with the body."""
    body = request.get_json(silent=True)
    if isinstance(body, dict):
        return body
    if not request.is_json:
        said = f"Content-Type is {request.mimetype!r}" if request.mimetype else "no Content-Type"
        raise InvalidInput.one(f"the request body must be a JSON object sent as application/json ({said})", field="body")
    if body is None and request.get_data():
        try:
            json.loads(request.get_data())
        except ValueError as exc:
            raise InvalidInput.one(f"the request body is not valid JSON: {exc}", field="body") from None
        except RecursionError:
            raise InvalidInput.one("the request body is JSON nested too deeply", field="body") from None
    raise InvalidInput.one("the request body must be a JSON object", field="body")


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
