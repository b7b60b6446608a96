"""Suggestions: what the labeling page shows of the model's prediction for an example.

A project's ``suggestions`` setting is ``off``, ``show`` (the model's top labels with their
probabilities beside the buttons) or ``preselect`` (the predicted label pre-selected, ``Enter``
accepts it). A share ``blind_share`` of examples is served blind (without a suggestion), so the
dashboard can compare suggested and blind labels (``labeling.suggestion_effect``). Whether an
example is blind is a pure function of the project and example ids. What was shown is stored
with the lease when an example is served (:func:`lease_columns`), and the label submitted under
it records that: a retrain or a settings change between serving and submitting changes nothing.

The suggestion comes from the example's stored score (``predicted_label`` and the top
probabilities in ``suggestion_probs``, written by the re-scoring): serving reads one row, as
before, and never loads a model.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sqlalchemy import String, Table, bindparam, case, literal, null

from active_learning.evaluation import top_classes
from labeling.projects import ProjectConfig

# What a label event records in ``Label.suggestion_mode`` (null: suggestions were off).
SHOWN_MODES = ("blind", "show", "preselect", "unscored")
TOP_K = 3  # labels (with probabilities) stored per example and shown
# The JSON text of every probability at 4 decimals, looked up rather than formatted per row.
_PROBABILITY_TEXT = np.array([repr(i / 10000) for i in range(10001)], dtype=object)


@dataclass(frozen=True)
class Shown:
    """What the page shows for one example while suggestions are on.

    ``mode`` is ``blind`` (nothing, on purpose), ``unscored`` (nothing: the model has not scored
    it), or the project's ``show``/``preselect`` with the suggested ``label`` and its top
    ``probabilities`` ({label: probability}, highest first).
    """

    mode: str
    label: str | None = None
    probabilities: dict[str, float] | None = None

    def as_json(self) -> dict[str, Any] | None:
        """The API's ``suggestion``: null unless a suggestion is shown."""
        if self.label is None:
            return None
        return {"label": self.label, "probabilities": self.probabilities}


def is_blind(project_id: int, example_id: int, blind_share: float) -> bool:
    """Whether the example is served without a suggestion: a hash of the two ids, uniform in
    [0, 1), below ``blind_share``. Raising the share only adds blind examples."""
    digest = hashlib.blake2b(f"{project_id}:{example_id}".encode(), digest_size=8, person=b"hitl-blind").digest()
    return int.from_bytes(digest, "big") / 2.0**64 < blind_share


def shown(settings: ProjectConfig, project_id: int, example_id: int, predicted_label: str | None,
          confidence: float | None, probabilities: dict[str, float] | None) -> Shown | None:
    """What the page shows for an example with this stored score; None when suggestions are off.

    An example scored before the top probabilities were stored shows its predicted label with
    its confidence alone.
    """
    if settings.suggestions == "off":
        return None
    if is_blind(project_id, example_id, settings.blind_share):
        return Shown("blind")
    if predicted_label is None:
        return Shown("unscored")
    if not probabilities:
        probabilities = {predicted_label: round(float(confidence or 0.0), 4)}
    return Shown(settings.suggestions, predicted_label, probabilities)


def served_mode(settings: ProjectConfig, project_id: int, example_id: int) -> str:
    """The mode an example is served under before its score is read: ``off``, ``blind``, or the
    project's ``show``/``preselect`` (which :func:`lease_columns` turns into ``unscored`` for an
    example the model has not scored)."""
    if settings.suggestions == "off":
        return "off"
    return "blind" if is_blind(project_id, example_id, settings.blind_share) else settings.suggestions


def lease_columns(examples: Table) -> dict[str, Any]:
    """The values of ``lease_suggestion_mode`` and ``lease_suggested`` for the statement that
    serves a lease, from the bound ``served_mode`` (:func:`served_mode`) and the row's stored
    prediction, read by that statement: what :func:`shown` makes of the same row."""
    mode = bindparam("served_mode", type_=String(16))
    suggesting = mode.in_(("show", "preselect"))
    return {
        "lease_suggestion_mode": case((suggesting & examples.c.predicted_label.is_(None), literal("unscored")),
                                      else_=mode),
        "lease_suggested": case((suggesting, examples.c.predicted_label), else_=null()),
    }


def recorded(lease_mode: str | None, lease_suggested: str | None) -> dict[str, Any]:
    """What a label records of the suggestion its lease was served with (``suggestion_mode`` null
    when suggestions were off)."""
    return {"suggestion_mode": None if lease_mode == "off" else lease_mode,
            "suggested": lease_suggested if lease_mode in ("show", "preselect") else None}


def stored_probabilities(pred_probs: np.ndarray, classes: Any) -> list[str]:
    """Each row's ``TOP_K`` most probable labels as the JSON text of ``Example.suggestion_probs``
    (``{"label": probability, ...}``, highest first, 4 decimals).

    Built column-wise from strings (numpy object arrays, no per-row Python): a dict per row,
    then encoded, cost several times more in a re-scoring's big heap, where the garbage collector
    walks every new container.
    """
    top, probs = top_classes(pred_probs, k=TOP_K)
    keys = np.array([orjson.dumps(str(c)).decode() + ":" for c in classes], dtype=object)
    values = _PROBABILITY_TEXT[np.rint(np.clip(probs, 0.0, 1.0) * 10000).astype(np.intp)]
    text = "{" + keys[top[:, 0]] + values[:, 0]
    for j in range(1, top.shape[1]):
        text = text + "," + keys[top[:, j]] + values[:, j]
    return (text + "}").tolist()
