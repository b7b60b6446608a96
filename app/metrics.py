"""Prometheus metrics (``/metrics``) and one structured log line per request.

Request counts and latencies are counted in the process that served them; under ``hitl serve``
(several gunicorn workers) ``PROMETHEUS_MULTIPROC_DIR`` makes /metrics add up all workers.
Queue depth, labels, retrain durations and webhook failures are read from the database at
scrape time, so every process and worker reports the same numbers.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from typing import Iterator

from flask import Blueprint, Flask, Response, current_app, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from sqlalchemy import func, select

from app.auth import public
from labeling.db import read_in_own_transaction

log = logging.getLogger("hitl.request")
bp = Blueprint("metrics", __name__)

REQUESTS = Counter("hitl_http_requests", "HTTP requests served", ["endpoint", "method", "status"])
LATENCY = Histogram("hitl_http_request_duration_seconds", "Time to answer a request", ["endpoint"],
                    buckets=(0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


class DatabaseCollector:
    """Gauges and counters kept in the database, read when Prometheus scrapes."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def collect(self) -> Iterator:
        from labeling.models import Example, Label, Project, RetrainRun, WebhookAttempt

        with self.app.extensions["hitl_sessionmaker"]() as session:
            read_in_own_transaction(session)
            depth = GaugeMetricFamily("hitl_queue_depth", "Examples still wanting labels", labels=["project"])
            for project_id, n in session.execute(
                select(Example.project_id, func.count()).where(Example.needs_labels).group_by(Example.project_id)):
                depth.add_metric([str(project_id)], n)
            yield depth
            labels = CounterMetricFamily("hitl_labels", "Label events with a value (undo events excluded)", labels=["project"])
            for project_id in session.scalars(select(Project.id)):
                n = session.scalar(select(func.count()).where(Label.project_id == project_id, Label.value.is_not(None)))
                labels.add_metric([str(project_id)], n)
            yield labels
            durations = SummaryMetricFamily("hitl_retrain_duration_seconds", "Duration of finished retrain runs",
                                            labels=["status"])
            runs = CounterMetricFamily("hitl_retrain_runs", "Retrain runs by status", labels=["status"])
            for status, count, total in session.execute(
                select(RetrainRun.status, func.count(), func.sum(_seconds(RetrainRun)))
                .group_by(RetrainRun.status)):
                runs.add_metric([status], count)
                if status in ("succeeded", "failed"):
                    durations.add_metric([status], count_value=count, sum_value=float(total or 0.0))
            yield runs
            yield durations
            failures = session.scalar(select(func.count()).where(
                (WebhookAttempt.status_code.is_(None)) | (WebhookAttempt.status_code >= 300)))
            yield CounterMetricFamily("hitl_webhook_failures", "Webhook attempts that failed", value=failures or 0)


def _seconds(run_table):
    """finished_at - started_at in seconds, on SQLite and PostgreSQL alike."""
    from sqlalchemy import case, literal

    dialect = current_app.extensions["hitl_engine"].dialect.name
    if dialect == "postgresql":
        return func.extract("epoch", run_table.finished_at - run_table.started_at)
    done = run_table.finished_at.is_not(None) & run_table.started_at.is_not(None)
    return case((done, (func.julianday(run_table.finished_at) - func.julianday(run_table.started_at)) * 86400.0),
                else_=literal(0.0))


def init_metrics(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _count(response):  # type: ignore[no-untyped-def]
        started = g.pop("request_started", None)
        if started is None:
            return response
        duration = time.perf_counter() - started
        endpoint = request.endpoint or "unknown"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        LATENCY.labels(endpoint).observe(duration)
        # Route and outcome only: never the query string, a body or a header (tokens live there).
        log.info(json.dumps({"route": request.url_rule.rule if request.url_rule else None, "endpoint": endpoint,
                             "method": request.method, "status": response.status_code,
                             "duration_ms": round(duration * 1000, 2)}))
        return response


@bp.route("/metrics")
@public
def metrics():
    """Prometheus text format (with LABELING_METRICS_TOKEN set, only for that bearer token)."""
    expected = current_app.config["METRICS_TOKEN"]
    if expected:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return Response("send the metrics token as 'Authorization: Bearer <token>'\n", 401, mimetype="text/plain")
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    body = generate_latest(registry)
    db_registry = CollectorRegistry()
    db_registry.register(DatabaseCollector(current_app._get_current_object()))
    body += generate_latest(db_registry)
    return Response(body, mimetype=CONTENT_TYPE_LATEST)
