"""The champion during a run, for single-label and multi-label training alike: the inputs of its
own featurizer, its holdout predictions, and its re-scoring of the pool when it keeps serving.

The project's featurizer setting may have moved to another kind of input (text to vectors, say)
since the champion was trained; it cannot read the new kind, so it is judged, and re-scores the
pool, on inputs of its own kind (its version's ``metrics["featurizer"]``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
from sqlalchemy.orm import Session

from active_learning.names import INPUT_KIND
from labeling.features import champion_rows, featurized, read_inputs, subset
from labeling.models import ModelVersion
from labeling.registry import unpack
from labeling.rescoring import pool_not_scored_by, rescore_pool

log = logging.getLogger(__name__)


def champion_inputs(session: Session, champion: ModelVersion | None, featurizer: str, ids: Sequence[int],
                    inputs: Any) -> tuple[str, Any]:
    """The champion's featurizer and the examples ``ids`` read for it: ``inputs`` (read for the
    project's ``featurizer``) when it reads the same kind, else read again for its kind; None when
    they cannot be read (examples without the vectors it read, say). Without a champion, ``featurizer``."""
    if champion is None:
        return featurizer, inputs
    own = (champion.metrics or {}).get("featurizer") or featurizer
    if INPUT_KIND.get(own) == INPUT_KIND[featurizer]:
        return own, inputs
    try:
        return own, read_inputs(session, ids, INPUT_KIND[own])
    except (ValueError, KeyError):
        return own, None


def _predict(classifier: Any, rows: Any) -> np.ndarray:
    return classifier.predict(rows)


def champion_predictions(read: Any, Z_hold: Any, *,
                         predict: Callable[[Any, Any], np.ndarray] = _predict) -> np.ndarray | None:
    """The champion's holdout predictions (``predict(classifier, rows)``; its ``predict`` by default),
    from the inputs of its own featurizer, or, when both models read sentence embeddings, from those
    in ``Z_hold``, this run's featurized holdout (the encoder is the same; encoding again would cost
    seconds). None without a champion, or when it cannot read them: it then loses.

    ``read`` is ``labeling.training``'s read phase (champion, its featurizer's inputs, data, features).
    """
    champion = read.champion
    if champion is None or read.champion_inputs is None:
        return None
    try:
        model = unpack(champion)[1]
        X_hold = subset(read.champion_inputs, read.data.holdout)
        return predict(model[-1], champion_rows(model[0], read.features, X_hold, Z_hold))
    except (ValueError, KeyError) as exc:  # an old model that cannot read today's inputs loses
        log.warning("champion v%s could not be evaluated: %s", champion.version, exc)
        return None


def rescore_by_champion(session: Session, read: Any, *, rescore_anyway: bool, heartbeat: Callable[[], None],
                        random_state: int) -> int:
    """When the champion keeps serving and the strategy changed (``rescore_anyway``) or an earlier
    run died while re-scoring, it re-scores the pool, read for its own featurizer; returns the
    number scored (0 when it does not). The ranked batch reads the labeled rows through the
    champion's featurizer: stored sentence embeddings are read, not encoded again."""
    champion = read.champion
    if champion is None or not (rescore_anyway or pool_not_scored_by(session, read.project, champion.version)):
        return 0
    model = unpack(champion)[0]
    ids = read.data.example_ids
    return rescore_pool(session, read.project, model, champion.version, version_metrics=champion.metrics,
                        kind=INPUT_KIND[read.champion_featurizer],
                        Z_labeled=lambda: featurized(session, read.champion_featurizer, model[0], ids,
                                                     inputs=read.champion_inputs),
                        heartbeat=heartbeat, random_state=random_state)
