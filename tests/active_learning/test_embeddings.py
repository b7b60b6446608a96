"""The optional sentence-embedding featurizer (the ``embeddings`` extra, installed for the tests)."""

import numpy as np

from active_learning.embeddings import SentenceEmbedder
from active_learning.models import dump_model, load_model, make_model


def test_similar_sentences_embed_close_and_others_far():
    vectors = SentenceEmbedder().fit_transform(["The movie was wonderful.", "What a great film!",
                                                "The invoice is due on Friday."])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_a_model_on_embeddings_learns_and_its_artifact_holds_no_weights():
    positive = ["I loved it", "wonderful, would buy again", "excellent quality", "great value, very happy"]
    negative = ["terrible, it broke", "awful experience", "worst purchase ever", "very disappointed, poor quality"]
    model = make_model("embeddings").fit(positive + negative, ["pos"] * 4 + ["neg"] * 4)
    assert list(model.predict(["really great, I love it", "broken and awful"])) == ["pos", "neg"]
    artifact, digest = dump_model(model)
    assert len(artifact) < 100_000  # the 90 MB sentence model is loaded where used, not stored
    assert list(load_model(artifact, digest).predict(["fantastic"])) == ["pos"]


def test_the_stateless_embedder_counts_as_fitted_even_alone_in_a_pipeline():
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(SentenceEmbedder())  # a model's featurizer part (model[:-1]) can transform
    check_is_fitted(Pipeline([("features", SentenceEmbedder())]))
