"""The names a project may choose: query strategies and featurizers. Apart from their code, so
that validating a setting (and starting the web app or the CLI) does not import scikit-learn."""

STRATEGIES = ("uncertainty", "margin", "entropy", "random", "batch")
# Each featurizer and the kind of input it reads from an example.
INPUT_KIND = {"tfidf": "text", "hashing": "text", "features": "vector", "numeric": "fields", "embeddings": "text",
              "tfidf_embeddings": "text"}
FEATURIZERS = tuple(INPUT_KIND)
# Featurizers that need the optional "embeddings" extra (sentence-transformers and its model).
NEEDS_EMBEDDINGS = ("embeddings", "tfidf_embeddings")
# Multi-label projects' strategies (active_learning/multilabel.py); the first is the default.
MULTILABEL_STRATEGIES = ("min_confidence", "avg_confidence", "random")
