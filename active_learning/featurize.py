"""Featurizers: how examples become model inputs.

Each featurizer is a scikit-learn transformer. Its input kind says what the caller passes:
``"text"`` (a list of strings), ``"vector"`` (an array of shape ``(n, d)``) or ``"fields"`` (a
list of dicts of numeric fields).
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer, TfidfVectorizer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import MaxAbsScaler, StandardScaler

from active_learning.names import FEATURIZERS, INPUT_KIND


def resolve_featurizer(name: str, *, has_vectors: bool, embeddings_ok: bool = False) -> str:
    """Turn ``"auto"`` into a concrete featurizer: vectors when rows carry them, else TF-IDF beside
    sentence embeddings when ``embeddings_ok`` (the extra is installed and the pool small enough to
    encode), else TF-IDF."""
    if name == "auto":
        if has_vectors:
            return "features"
        return "tfidf_embeddings" if embeddings_ok else "tfidf"
    if name not in INPUT_KIND:
        raise ValueError(f"unknown featurizer {name!r}; valid ones are auto, {', '.join(FEATURIZERS)}")
    return name


def make_featurizer(name: str, *, min_df: int = 1) -> Pipeline | BaseEstimator:
    """A fresh, unfitted featurizer. Outputs are scaled so that lbfgs converges."""
    if name == "tfidf":
        return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=min_df, max_features=200_000)
    if name == "hashing":
        # No vocabulary to hold: constant memory for very large pools.
        return make_pipeline(HashingVectorizer(n_features=2**18, alternate_sign=False, ngram_range=(1, 2)),
                             TfidfTransformer(sublinear_tf=True))
    if name == "features":
        # Max-abs, not standard, scaling: a feature that is rarely non-zero (an edge pixel) would be
        # blown up to large values by its tiny standard deviation and dominate a model fit on a few
        # labels. On digits this cut the labels to 95% of full-pool accuracy from ~120 to ~100.
        return MaxAbsScaler()
    if name == "numeric":
        return make_pipeline(DictVectorizer(sparse=False), StandardScaler())
    if name == "embeddings":  # the optional extra; see active_learning/embeddings.py
        from active_learning.embeddings import SentenceEmbedder

        return SentenceEmbedder()
    if name == "tfidf_embeddings":
        from active_learning.embeddings import TextAndEmbeddings

        return TextAndEmbeddings()
    raise ValueError(f"unknown featurizer {name!r}; valid ones are {', '.join(FEATURIZERS)}")


def fit_featurizer(name: str, pool: Any) -> Pipeline | BaseEstimator:
    """A featurizer fitted without labels on a pool of inputs (vocabulary, IDF, scales).

    TF-IDF on a pool keeps terms seen in at least two of its examples (a term seen once cannot
    help a model generalize); a pool too small for that keeps every term.
    """
    if name == "tfidf":
        try:
            return make_featurizer(name, min_df=2).fit(pool)
        except ValueError:  # no term in two examples: a tiny pool
            return make_featurizer(name).fit(pool)
    return make_featurizer(name).fit(pool)
