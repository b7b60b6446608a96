"""Optional MLflow tracking of retrain runs (the ``mlflow`` extra).

Each finished run becomes an MLflow run in the experiment ``hitl/<project>``: the project's
settings and the run's facts as params, the candidate's and the champion's holdout scores as
metrics, the promotion decision as tags, and the model exactly as the service stores it
(the joblib artifact, with its SHA-256) as an artifact. The service's own database stays the
record of truth: a tracking server that is down costs a warning, never a run.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from labeling.models import ModelVersion, Project, RetrainRun

log = logging.getLogger(__name__)


def _client(tracking_uri: str) -> Any:
    # MLflow reports usage to its authors unless told not to; a labeling service should not.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Its HTTP client retries for minutes by default; a retrain job should not wait that long
    # for a copy of what the database already holds.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def _experiment_id(client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # another process created it first
        return client.get_experiment_by_name(name).experiment_id


def _numbers(prefix: str, metrics: dict[str, Any] | None) -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in (metrics or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def track_run(session: Session, run_id: int, tracking_uri: str) -> str | None:
    """Log a finished retrain run to MLflow; returns the MLflow run id, or None if it failed."""
    run = session.get(RetrainRun, run_id)
    project = session.get(Project, run.project_id)
    model = session.get(ModelVersion, run.model_version_id) if run.model_version_id else None
    result = run.result or {}
    try:
        client = _client(tracking_uri)
        tracked = client.create_run(_experiment_id(client, f"hitl/{project.name}"),
                                    run_name=f"run {run.id}" + (f" (v{model.version})" if model else ""),
                                    tags={"hitl.project_id": str(project.id), "hitl.run_id": str(run.id),
                                          "hitl.status": run.status})
        mlflow_id = tracked.info.run_id
        params = {f"project.{k}": v for k, v in sorted(project.settings.items())}
        params.update(trigger=run.trigger, snapshot=result.get("snapshot"), n_labels=result.get("n_labels"))
        if model is not None:
            params.update(model_version=model.version, featurizer=model.metrics.get("featurizer"),
                          n_train=model.metrics.get("n_train"), promotion_metric=model.metrics.get("metric"))
        for key, value in params.items():
            if value is not None:
                client.log_param(mlflow_id, key, str(value)[:6000])
        for key, value in {**_numbers("", result.get("metrics")),
                           **_numbers("champion_", result.get("champion_metrics"))}.items():
            client.log_metric(mlflow_id, key, value)
        if model is not None:
            client.set_tag(mlflow_id, "hitl.promoted", str(model.status == "champion").lower())
            client.set_tag(mlflow_id, "hitl.decision", model.metrics.get("decision", ""))
            client.set_tag(mlflow_id, "hitl.artifact_sha256", model.artifact_sha256)
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"model-v{model.version}.joblib"
                path.write_bytes(model.artifact)
                client.log_artifact(mlflow_id, str(path), artifact_path="model")
        client.set_terminated(mlflow_id, status="FINISHED" if run.status == "succeeded" else "FAILED")
        return mlflow_id
    except Exception:  # tracking is a copy; the run itself already succeeded or failed on its own
        log.warning("could not log retrain run %s to MLflow at %s", run_id, tracking_uri, exc_info=True)
        return None
