"""The OpenAPI 3.1 document of /api/v1. ``tests/app/test_openapi.py`` checks that every API
route is in it (and nothing else), and runs schemathesis against it."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api import bp
from app.auth import public
from labeling.audit import ACTIONS, families
from labeling.browse import SHORT_TEXT_EXAMPLES, TOTAL_CAP
from labeling.models import FLAG_REASONS, FLAG_STATUSES, MEMBER_ROLES
from labeling.projects import FEATURIZERS, MULTILABEL_ONLY, MULTILABEL_STRATEGIES, STRATEGIES, SUGGESTION_MODES
from labeling.roles import ROLES
from labeling.tasks import TASKS
from labeling.suggestions import SHOWN_MODES

ERROR = {"$ref": "#/components/schemas/Error"}
ID = {"type": "integer", "minimum": 1}
LABEL_SET = {"type": "array", "items": {"type": "string"}, "uniqueItems": True}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _op(summary: str, *, tag: str, ok: int = 200, ok_schema: dict[str, Any] | None = None, body: dict[str, Any] | None = None,
        params: list[dict[str, Any]] | None = None, errors: tuple[int, ...] = (401, 403, 404, 422),
        ok_content: dict[str, Any] | None = None) -> dict[str, Any]:
    responses: dict[str, Any] = {str(ok): {"description": "OK", **(ok_content or (_json(ok_schema) if ok_schema else {}))}}
    for code in errors:
        responses[str(code)] = {"description": {400: "Bad request", 401: "No or bad token", 403: "Role not allowed",
                                                404: "Not found", 409: "Conflict", 422: "Invalid input",
                                                503: "Unavailable in this process"}[code], **_json(ERROR)}
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    return op


def _with_response(op: dict[str, Any], code: str, response: dict[str, Any]) -> dict[str, Any]:
    return {**op, "responses": {**op["responses"], code: response}}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


PAGE = [_query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        _query("offset", {"type": "integer", "minimum": 0, "default": 0})]
PROJECT = [_path_id("project_id")]

# Suggestions (labeling/suggestions.py): what /next shows, and what a label records of it.
SUGGESTION = {
    "oneOf": [{"type": "null"}, {"type": "object", "required": ["label", "probabilities"], "properties": {
        "label": {"type": "string"},
        "probabilities": {"type": "object", "additionalProperties": {"type": "number"},
                          "description": "the model's top labels (at most 3), highest first"}}}],
    "description": "only when the project's suggestions are on; null for a blind example (blind_share) or one the "
                   "model has not scored"}
LABEL_SHOWN = {
    "suggestion_mode": {"enum": [None, *SHOWN_MODES], "description": "what the page showed: null when suggestions were off"},
    "suggested": {"type": ["string", "null"], "description": "the suggested label, when one was shown"}}


def _settings_schema() -> dict[str, Any]:
    """Project settings (labeling.projects.PROJECT_SETTINGS)."""
    return {"type": "object", "additionalProperties": False, "properties": {
        "strategy": {"enum": [*STRATEGIES, *MULTILABEL_ONLY],
                     "description": "single-label: " + ", ".join(STRATEGIES) + "; multi-label: "
                                    + ", ".join(MULTILABEL_STRATEGIES)},
        "retrain_threshold": {"type": "integer", "minimum": 1, "maximum": 100000},
        "overlap": {"type": "integer", "minimum": 1, "maximum": 50},
        "featurizer": {"enum": list(FEATURIZERS)},
        "holdout_fraction": {"type": "number", "minimum": 0, "maximum": 0.5},
        "random_share": {"type": "number", "minimum": 0, "maximum": 1},
        "promotion_metric": {"enum": ["accuracy", "macro_f1"]},
        "diverse_batches": {"type": "boolean"},
        "typical_picks": {"type": "boolean"},
        "queue_seed": {"oneOf": [{"type": "integer", "minimum": 0}, {"const": ""}]},
        "suggestions": {"enum": list(SUGGESTION_MODES), "description": "the model's suggestion on the labeling page"},
        "blind_share": {"type": "number", "minimum": 0, "maximum": 1,
                        "description": "share of examples served without a suggestion"},
        "webhook_url": {"type": "string"}, "webhook_secret": {"type": "string"}}}


def _schemas() -> dict[str, Any]:
    return {
        "Error": {"type": "object", "required": ["error", "errors"], "properties": {
            "error": {"type": "string"},
            "errors": {"type": "array", "items": {"type": "object", "required": ["message"], "properties": {
                "field": {"type": "string"}, "line": {"type": "integer"}, "message": {"type": "string"}}}}}},
        "ProjectIn": {"type": "object", "required": ["name", "labels"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "labels": {"type": "array", "minItems": 1, "items": {"oneOf": [
                {"type": "string", "minLength": 1}, {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"}, "hotkey": {"type": "string", "maxLength": 1}}}]}},
            "settings": _ref("Settings")}},
        "Settings": _settings_schema(),
        "Project": {"type": "object", "required": ["id", "name", "labels", "settings"], "properties": {
            "id": ID, "name": {"type": "string"}, "labels": {"type": "array", "items": {"type": "string"}},
            "settings": {"type": "object"}, "archived": {"type": "boolean"},
            "archived_at": {"type": ["string", "null"], "format": "date-time"},
            "counts": {"type": "object", "properties": {
                "examples": {"type": "integer"}, "labeled": {"type": "integer"}, "labels": {"type": "integer"},
                "open_flags": {"type": "integer"}}},
            "champion_model_version": {"type": ["integer", "null"]}}},
        "ExampleIn": {"type": "object", "properties": {
            "external_id": {"type": ["string", "integer"], "description": "the caller's id; without it, "
                            "`sha256:` and 24 hex digits of the text, image and features"}, "text": {"type": "string"}, "image": {"type": "string"},
            "features": {"type": "array", "items": {"type": "number"}}, "meta": {"type": "object"},
            "label": {"type": "string"}, "labels": {**LABEL_SET, "description": "multi-label projects, instead "
                                                   "of label (CSV: joined by `|`, `[]` for none)"}}},
        "ImportResult": {"type": "object", "required": ["imported", "duplicates"], "properties": {
            "imported": {"type": "integer"}, "duplicates": {"type": "integer"}, "labels": {"type": "integer"},
            "updated": {"type": "integer", "description": "duplicates whose content was replaced (on_duplicate=update)"}}},
        **_labeling_schemas(),
        "Import": _import_schema(),
        "Run": {"type": "object", "required": ["id", "status", "trigger", "started_at", "finished_at", "model_version", "error"],
                "properties": {"status": {"enum": ["queued", "running", "succeeded", "failed"]}}},
        "Model": {"type": "object", "required": ["version", "status", "trained_at", "n_labels", "metrics", "snapshot"],
                  "properties": {"status": {"enum": ["champion", "candidate", "rejected"]}}},
        "Flag": {"type": "object", "required": ["id", "label_id", "example_id", "external_id", "given", "suggested", "score", "reason"]},
        "Delivery": {"type": "object", "required": ["id", "event", "status", "attempts"]},
        **_people_schemas(),
        **_browse_schemas(),
    }


def _labeling_schemas() -> dict[str, Any]:
    return {
        "Next": {"type": "object", "required": ["example", "lease", "why"], "properties": {
            "example": {"type": "object", "required": ["id", "external_id", "data"]},
            "lease": {"type": "object", "required": ["id", "expires_at"]},
            "why": {"type": "object", "required": ["strategy", "score", "model_version"]}}},
        "LabelIn": {"type": "object", "required": ["example_id"], "properties": {
            "example_id": ID, "label": {"type": "string", "description": "single-label projects"},
            "labels": {**LABEL_SET, "description": "multi-label projects (an empty list: none of them)"},
            "lease_id": {"type": "integer"},
            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 100},
            "duration_ms": {"type": "integer", "minimum": 0}}},
        "Label": {"type": "object", "required": ["id", "example_id", "value", "annotator", "created_at"]},
    }


def _import_schema() -> dict[str, Any]:
    """An import job; ``error_groups`` tells the same problem on many lines once."""
    group = {"type": "object", "required": ["message", "lines", "count"], "properties": {
        "field": {"type": ["string", "null"]}, "message": {"type": "string"},
        "lines": {"type": "array", "items": {"type": "integer"}, "description": "the first few lines"},
        "count": {"type": "integer", "description": "how many lines have it"}}}
    return {"type": "object", "required": ["id", "project_id", "status", "phase", "progress", "imported",
                                           "duplicates", "labels", "updated", "errors"],
            "properties": {"status": {"enum": ["queued", "running", "succeeded", "failed"]},
                           "progress": {"type": "number", "minimum": 0, "maximum": 1},
                           "error_groups": {"type": "array", "items": group,
                                            "description": "every problem, grouped by field and message"}}}


def _people_schemas() -> dict[str, Any]:
    when = {"type": ["string", "null"], "format": "date-time"}
    return {
        "User": {"type": "object", "required": ["id", "name", "role", "active", "created_at"], "properties": {
            "id": ID, "name": {"type": "string"}, "role": {"enum": list(ROLES)}, "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"}}},
        "UserIn": {"type": "object", "required": ["name", "role"], "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_.@-]{1,80}$"}, "role": {"enum": list(ROLES)},
            "password": {"type": "string", "minLength": 8, "maxLength": 1024,
                         "description": "omit for a token-only account"}}},
        "Token": {"type": "object", "required": ["id", "name", "created_at", "expires_at", "last_used_at"], "properties": {
            "id": ID, "name": {"type": "string"}, "user": {"type": "string"}, "created_at": {"type": "string"},
            "expires_at": when, "last_used_at": {**when, "description": "kept to the hour"}}},
        "Members": {"type": "object", "required": ["members"], "properties": {"members": {"type": "array", "items": {
            "type": "object", "required": ["user", "role"], "additionalProperties": False, "properties": {
                "user": {"type": "string", "description": "a user name"}, "role": {"enum": list(MEMBER_ROLES)}}}}}},
        "AuditAction": {"enum": list(ACTIONS), "description": "; ".join(f"`{k}`: {v}" for k, v in ACTIONS.items())},
        "AuditEvent": {"type": "object", "required": ["id", "at", "actor", "action", "details"], "properties": {
            "id": ID, "at": {"type": "string", "format": "date-time"}, "actor": {"type": "string"},
            "actor_id": {"type": ["integer", "null"]}, "action": _ref("AuditAction"), "project": ID,
            "target": {"type": "string"}, "details": {"type": "object"}}},
    }


def _project_paths() -> dict[str, Any]:
    return {
        "/api/v1/projects": {
            "get": _op("List projects", tag="projects", ok_schema={"type": "object", "required": ["projects"]}, params=PAGE, errors=(401, 422)),
            "post": _op("Create a project", tag="projects", ok=201, ok_schema=_ref("Project"), body=_ref("ProjectIn"), errors=(401, 403, 422)),
        },
        "/api/v1/projects/{project_id}": {
            "get": _op("A project with its counts", tag="projects", ok_schema=_ref("Project"), params=PROJECT, errors=(401, 403, 404)),
            "patch": _op("Change a project's settings or name, add labels (each gets a free hotkey; labels are never "
                         "renamed or removed); archive (read-only, hidden from annotators, still exportable) "
                         "or unarchive it", tag="projects", ok_schema=_ref("Project"), params=PROJECT,
                         body={"type": "object", "additionalProperties": False, "properties": {
                             "settings": _ref("Settings"), "archived": {"type": "boolean"}, "name": {"type": "string"},
                             "add_labels": {"type": "array", "items": {"type": "string"}}}}),
            "delete": _with_response(
                _op("Delete a project and everything of it (examples, labels, models, runs, flags, snapshots, imports, "
                    "deliveries) in one transaction; `confirm` must be the project's name", tag="projects", ok=204,
                    params=PROJECT + [{"name": "confirm", "in": "query", "required": True, "schema": {"type": "string"},
                                       "description": "the project's name"}]),
                "204", {"description": "Deleted"}),
        },
        "/api/v1/projects/{project_id}/members": {
            "get": _op("Who may work on the project, with their role there; empty: every user", tag="projects",
                       ok_schema=_ref("Members"), params=PROJECT, errors=(401, 403, 404)),
            "put": _op("Replace the member list (an empty list opens the project to every user); with members, "
                       "only they and admins see the project", tag="projects", ok_schema=_ref("Members"), params=PROJECT,
                       body=_ref("Members")),
        },
        "/api/v1/projects/{project_id}/examples": {
            "post": _with_response(
                _op("Import examples (JSON body, or a multipart file .jsonl/.csv/.parquet); all or nothing. "
                    "201 when the import finished within ?wait= seconds, else 202 with the import to poll",
                    tag="examples", ok=201, ok_schema=_ref("ImportResult"),
                    params=PROJECT + [_query("wait", {"type": "number", "minimum": 0},
                                             "seconds to wait for the import (default and maximum: IMPORT_WAIT_SECONDS)")]
                    + [_query(name, {"type": "string"}, "as the body's field of that name, which comes first")
                       for name in ("source", "on_duplicate", "unknown_columns")],
                    body={"type": "object", "required": ["examples"], "properties": {
                        "examples": {"type": "array", "items": _ref("ExampleIn")}, "source": {"type": "string"},
                        "on_duplicate": {"type": "string", "enum": ["skip", "update"], "default": "skip"},
                        "unknown_columns": {
                            "type": "string", "enum": ["error", "meta", "drop"], "default": "error",
                            "description": "fields that are none of the example's: a 422 naming them, into meta "
                                           "under their own names, or dropped (a CSV's go into meta unless drop)"}}}),
                "202", {"description": "Still running: poll status_url", **_json(_ref("Import"))}),
        },
        "/api/v1/projects/{project_id}/imports": {
            "get": _op("A project's imports, newest first", tag="examples", ok_schema={
                "type": "object", "required": ["imports", "total"], "properties": {"imports": {"type": "array", "items": _ref("Import")}}},
                params=PROJECT + PAGE),
        },
        "/api/v1/imports/{import_id}": {
            "get": _op("An import's status and progress", tag="examples", ok_schema=_ref("Import"),
                       params=[_path_id("import_id")], errors=(401, 403, 404)),
        },
    }


def _browse_paths() -> dict[str, Any]:
    filters = [
        _query("q", {"type": "string", "maxLength": 200}, "case-insensitive substring of the text or the external id; "
               "`%` and `_` are literal (3 characters or more: read from a text index; 1 or 2: searched in the "
               f"project's first {SHORT_TEXT_EXAMPLES:,} examples only, see `search_complete`)"),
        _query("label", {"type": "string"}, "a current label of the example"),
        _query("annotator", {"type": "string"}, "a user name: examples with a current label of theirs"),
        _query("status", {"enum": ["labeled", "unlabeled", "flagged", "holdout"]}, "flagged: has an open flag"),
        _query("min_confidence", {"type": "number", "minimum": 0, "maximum": 1}, "the model's stored confidence"),
        _query("max_confidence", {"type": "number", "minimum": 0, "maximum": 1}),
    ]
    page = {"type": "object", "required": ["examples", "total"], "properties": {
        "examples": {"type": "array", "items": _ref("BrowsedExample")},
        "total": {"type": "integer", "description": f"without filters the project's example count; with filters "
                                                  f"the matches, counted up to {TOTAL_CAP:,} (a capped count)"},
        "total_exact": {"type": "boolean", "description": "false when there are more than `total`, or may be "
                                                            "(`search_complete` false)"},
        "search_complete": {"type": "boolean", "description": "false when a text (`q`) of 1 or 2 characters was "
                                                              "searched in the project's first `searched_examples` "
                                                              "examples (id order) only: matches after them are not "
                                                              "shown; 3 characters or more search every example"},
        "searched_examples": {"type": ["integer", "null"], "description": "with `search_complete` false, how many "
                                                                          "examples were searched; else null"},
        "limit": {"type": "integer"}, "offset": {"type": "integer"}}}
    return {
        "/api/v1/projects/{project_id}/examples": {
            "get": _op("Browse a project's examples with filters, in id order", tag="examples", ok_schema=page,
                       params=PROJECT + PAGE + filters),
        },
        "/api/v1/examples/{example_id}": {
            "get": _op("An example with every label event (who, when, source, value, what it replaced), the "
                       "model's prediction and its flags", tag="examples", ok_schema=_ref("ExampleHistory"),
                       params=[_path_id("example_id")], errors=(401, 403, 404)),
        },
        "/api/v1/examples/{example_id}/relabel": {
            "post": _op("Relabel an example (reviewer, admin): a `review` event replacing its current label "
                        "(`label_id` when it has several); nothing erased, the replaced label's open flags close",
                        tag="examples", ok=201, ok_schema={"type": "object", "required": ["label"], "properties": {
                            "label": _ref("LabelEvent")}},
                        params=[_path_id("example_id")], body={"type": "object", "properties": {
                            "label": {"type": "string"}, "labels": LABEL_SET, "label_id": ID}},
                        errors=(401, 403, 404, 409, 422)),
        },
    }


def _browse_schemas() -> dict[str, Any]:
    prediction = {"type": "object", "required": ["label", "confidence", "model_version"]}
    return {
        "LabelEvent": {"type": "object", "required": ["id", "example_id", "value", "annotator", "created_at", "source",
                                                      "replaces", "current"], "properties": {
            "value": {"type": ["string", "null"], "description": "null for an undo"},
            "source": {"type": "string", "description": "annotator, mistake_check, undo, review, review_undo, import:<name>"},
            "replaces": {"type": ["integer", "null"]}}},
        "BrowsedExample": {"type": "object", "required": ["id", "external_id", "data", "labels"], "properties": {
            "labels": {"type": "array", "items": _ref("Label"), "description": "the current labels"},
            "prediction": prediction, "open_flags": {"type": "integer"}}},
        "ExampleHistory": {"type": "object", "required": ["id", "external_id", "data", "labels", "flags"], "properties": {
            "labels": {"type": "array", "items": _ref("LabelEvent")}, "prediction": prediction,
            "flags": {"type": "array", "items": _ref("Flag")}}},
    }


def _labeling_paths() -> dict[str, Any]:
    return {
        "/api/v1/projects/{project_id}/next": {
            "get": {**_op("Lease the next example to label", tag="labeling", ok_schema=_ref("Next"), params=PROJECT,
                          errors=(401, 404)),
                    "responses": {**_op("", tag="labeling", ok_schema=_ref("Next"), errors=(401, 404))["responses"],
                                  "204": {"description": "Nothing to label for this user right now"}}},
        },
        "/api/v1/projects/{project_id}/labels": {
            "post": _op("Submit a label (idempotent on idempotency_key)", tag="labeling", ok=201,
                        ok_schema={"type": "object", "required": ["label"], "properties": {"label": _ref("Label"), "warning": {
                            "type": "object", "properties": {"suggested": {"type": "string"}, "confidence": {"type": "number"}}}}},
                        params=PROJECT, body=_ref("LabelIn"), errors=(401, 404, 409, 422)),
        },
        "/api/v1/labels/{label_id}/undo": {
            "post": _op("Undo a label (a new event)", tag="labeling", ok_schema={"type": "object"},
                        params=[_path_id("label_id")], errors=(401, 403, 404, 409)),
        },
    }


def _training_paths() -> dict[str, Any]:
    return {
        "/api/v1/projects/{project_id}/retrain": {
            "post": _op("Queue a retrain run", tag="training", ok=202, ok_schema={"type": "object", "required": ["run_id"]},
                        params=PROJECT, errors=(401, 403, 404)),
        },
        "/api/v1/projects/{project_id}/runs": {
            "get": _op("Retrain runs", tag="training", ok_schema={"type": "object", "required": ["runs"], "properties": {
                "runs": {"type": "array", "items": _ref("Run")}}}, params=PROJECT + PAGE),
        },
        "/api/v1/runs/{run_id}": {
            "get": _op("A retrain run", tag="training", ok_schema=_ref("Run"), params=[_path_id("run_id")], errors=(401, 403, 404)),
        },
        "/api/v1/projects/{project_id}/models": {
            "get": _op("Model versions", tag="training", ok_schema={"type": "object", "required": ["models"], "properties": {
                "models": {"type": "array", "items": _ref("Model")}}}, params=PROJECT + PAGE),
        },
        "/api/v1/projects/{project_id}/predict": {
            "post": _op("The champion's predictions", tag="training", ok_schema={"type": "object", "required": ["model_version", "predictions"]},
                        params=PROJECT, body={"type": "object", "required": ["examples"], "properties": {
                            "examples": {"type": "array", "items": {"type": "object"}},
                            "enqueue_uncertain": {"type": "boolean"}, "uncertain_below": {"type": "number"}}},
                        errors=(401, 403, 404, 409, 422, 503)),
        },
    }


def _quality_and_data_paths() -> dict[str, Any]:
    export_params = [
        _query("format", {"enum": ["jsonl", "csv", "parquet"], "default": "jsonl"}),
        _query("snapshot", {"type": "integer", "minimum": 1}),
        _query("annotations", {"enum": ["gold", "all"], "default": "gold"},
               "gold: one row per labeled example (external_id, text, image, features, meta, label or labels, "
               "n_annotations, agreement, flag_status); all: one row per label event (external_id, label_id, "
               "label or labels, annotator, created_at, replaces, source, suggestion_mode: off, blind, unscored, "
               "show, preselect or null for events served to nobody, suggested: the label or labels shown)"),
        _query("include_unlabeled", {"type": "boolean", "default": False}),
    ]
    return {
        "/api/v1/projects/{project_id}/flags": {
            "get": _op("Flags on probably wrong labels, most suspicious first", tag="quality",
                       ok_schema={"type": "object", "required": ["flags"], "properties": {"flags": {"type": "array", "items": _ref("Flag")}}},
                       params=PROJECT + PAGE + [
                           _query("status", {"enum": [*FLAG_STATUSES, "all"], "default": "open"}),
                           _query("reason", {"enum": list(FLAG_REASONS)}, "only flags raised for this reason"),
                           _query("min_score", {"type": "number", "minimum": 0, "maximum": 1}, "only flags scoring at least this"),
                           _query("max_score", {"type": "number", "minimum": 0, "maximum": 1}, "only flags scoring at most this")]),
        },
        "/api/v1/flags/{flag_id}": {
            "post": _op("Confirm, correct or dismiss a flag, or reopen it (take back a decision)", tag="quality", ok_schema={"type": "object"}, params=[_path_id("flag_id")],
                        body={"type": "object", "required": ["action"], "properties": {
                            "action": {"enum": ["confirm", "correct", "dismiss", "reopen"]}, "label": {"type": "string"},
                            "labels": LABEL_SET}},
                        errors=(401, 403, 404, 409, 422)),
        },
        "/api/v1/projects/{project_id}/snapshots": {
            "post": _op("Freeze the current labels as a numbered snapshot", tag="label sets", ok=201,
                        ok_schema={"type": "object", "required": ["snapshot", "labels"]}, params=PROJECT, errors=(401, 403, 404)),
        },
        "/api/v1/projects/{project_id}/export": {
            "get": _op("Stream the label set", tag="label sets", params=PROJECT + export_params,
                       ok_content={"content": {"application/x-ndjson": {}, "text/csv": {}, "application/vnd.apache.parquet": {}}}),
        },
        "/api/v1/projects/{project_id}/webhook-deliveries": {
            "get": _op("Webhook deliveries", tag="webhooks", ok_schema={"type": "object", "required": ["deliveries"]},
                       params=PROJECT + PAGE + [_query("status", {"enum": ["pending", "delivered", "failed"]})]),
        },
        "/api/v1/webhook-deliveries/{delivery_id}/redeliver": {
            "post": _op("Send a delivery again", tag="webhooks", ok=202, ok_schema=_ref("Delivery"),
                        params=[_path_id("delivery_id")], errors=(401, 403, 404)),
        },
        "/api/v1/openapi.json": {"get": {"summary": "This document", "tags": ["meta"], "security": [],
                                         "responses": {"200": {"description": "OK"}}}},
    }


def _people_paths() -> dict[str, Any]:
    user_list = {"type": "object", "required": ["users"], "properties": {"users": {"type": "array", "items": _ref("User")}}}
    token_list = {"type": "object", "required": ["tokens"], "properties": {"tokens": {"type": "array", "items": _ref("Token")}}}
    new_token = {"allOf": [_ref("Token"), {"type": "object", "required": ["token"], "properties": {"token": {"type": "string"}}}]}
    events = {"type": "object", "required": ["events"], "properties": {"events": {"type": "array", "items": _ref("AuditEvent")}}}
    action = {"anyOf": [_ref("AuditAction"), {"enum": families()}]}
    return {
        "/api/v1/users": {
            "get": _op("List users", tag="people", ok_schema=user_list, params=PAGE, errors=(401, 403, 422)),
            "post": _op("Create a user", tag="people", ok=201, ok_schema=_ref("User"), body=_ref("UserIn"),
                        errors=(401, 403, 409, 422)),
        },
        "/api/v1/users/{user_id}": {
            "patch": _op("Change a user's role, deactivate or reactivate them (sessions end, tokens are revoked); "
                         "the last active admin cannot be demoted or deactivated (409)", tag="people",
                         ok_schema=_ref("User"), params=[_path_id("user_id")],
                         body={"type": "object", "additionalProperties": False, "properties": {
                             "role": {"enum": list(ROLES)}, "active": {"type": "boolean"}}},
                         errors=(401, 403, 404, 409, 422)),
        },
        "/api/v1/users/{user_id}/reset-password": {
            "post": _op("Give a user a new generated password, returned this once; their sessions end", tag="people",
                        ok_schema={"type": "object", "required": ["user", "password"], "properties": {
                            "user": _ref("User"), "password": {"type": "string"}}},
                        params=[_path_id("user_id")], errors=(401, 403, 404)),
        },
        "/api/v1/account/password": {
            "post": _with_response(_op("Change my password (the current one is required); my sessions end, my tokens "
                                       "stay", tag="people", ok=204,
                                       body={"type": "object", "required": ["current_password", "new_password"],
                                             "properties": {"current_password": {"type": "string"},
                                                            "new_password": {"type": "string", "minLength": 8}}},
                                       errors=(401, 422)),
                                   "204", {"description": "Changed"}),
        },
        "/api/v1/tokens": {
            "get": _op("My API tokens (an admin: ?user=NAME)", tag="people", ok_schema=token_list,
                       params=[_query("user", {"type": "string"}, "an admin may name another user")] + PAGE, errors=(401, 403, 404, 422)),
            "post": _op("Create an API token for me; the secret is shown this once", tag="people", ok=201,
                        ok_schema=new_token, body={"type": "object", "additionalProperties": False, "properties": {
                            "name": {"type": "string", "maxLength": 80},
                            "expires_in_days": {"type": "integer", "minimum": 1, "maximum": 3650}}},
                        errors=(401, 422)),
        },
        "/api/v1/tokens/{token_id}": {
            "delete": _with_response(_op("Revoke a token (mine; an admin: anyone's)", tag="people", ok=204,
                                         params=[_path_id("token_id")], errors=(401, 404)),
                                     "204", {"description": "Revoked"}),
        },
        "/api/v1/audit": {
            "get": _op("Audit events, newest first", tag="audit", ok_schema=events, params=PAGE + [
                _query("actor", {"type": "string"}, "a user name (or `cli`)"),
                _query("action", action, "an action, or a family (`user`, `token`, ...)"),
                _query("project", {"type": "integer", "minimum": 1}, "a project id")], errors=(401, 403, 422)),
        },
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "hitl-labeling API", "version": "1",
                 "description": "Human-in-the-loop labeling service. Errors: one shape, `Error`."},
        "servers": [{"url": "/"}],
        "components": {"schemas": _schemas(), "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": _merged(_project_paths(), _browse_paths(), _labeling_paths(), _training_paths(),
                         _quality_and_data_paths(), _people_paths()),
    }


def _merged(*groups: dict[str, Any]) -> dict[str, Any]:
    """Paths of several groups, the operations of a path given in two groups joined."""
    paths: dict[str, Any] = {}
    for group in groups:
        for path, operations in group.items():
            paths.setdefault(path, {}).update(operations)
    return paths


@bp.get("/openapi.json")
@public
def openapi():
    """Serve the OpenAPI document."""
    return jsonify(document())
