"""The model factory and model serialization (joblib bytes with a SHA-256 checksum)."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import joblib
from sklearn.pipeline import Pipeline

from active_learning.featurize import make_featurizer
from active_learning.model_selection import make_classifier


def make_model(featurizer: str, *, random_state: int | None = 0, C: float = 1.0) -> Pipeline:
    """Featurizer + logistic regression, unfitted."""
    return Pipeline([
        ("features", make_featurizer(featurizer)),
        ("classifier", make_classifier(C=C, random_state=random_state)),
    ])


def assemble(features: Any, classifier: Any) -> Pipeline:
    """A serving model from a fitted featurizer and a classifier fitted on its output: it reads
    raw inputs (texts, vectors, fields) like a pipeline fitted end to end."""
    return Pipeline([("features", features), ("classifier", classifier)])


def dump_model(model: Any) -> tuple[bytes, str]:
    """Serialize a fitted model; returns the bytes and their SHA-256 hex digest."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=3)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def load_model(data: bytes, sha256: str) -> Any:
    """Load a model stored by :func:`dump_model`, refusing bytes whose checksum does not match.

    Only load artifacts this service wrote: joblib unpickles.
    """
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError("model artifact checksum mismatch: refusing to load it")
    return joblib.load(io.BytesIO(data))
