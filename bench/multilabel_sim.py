"""Multi-label pieces of the evaluation suite (``simulate.py --dataset goemotions`` or ``digits_multi``).

A multi-label row carries ``labels``: a list of the project's labels, possibly empty ("none of
these"), in the project's label order (sorted names). The pieces:

- Data: ``goemotions`` (``bench/data/goemotions_ekman.jsonl``: Reddit comments and their Ekman
  emotion groups, see the data README) and ``digits_multi`` (scikit-learn's digits, four attributes
  of the true digit: ``even``, ``prime``, ``at_least_5`` and ``has_closed_loop`` for 0, 6, 8 and 9,
  a handwritten 4 being usually open; a 1 has none of them), or a JSONL file whose rows carry a
  ``labels`` list. Sets cannot be stratified on: samples and the test split are seeded random ones.
- The simulated annotator gives the true set, or with ``--noise`` p, for a share p of its
  annotations, the true set with one label, drawn uniformly among the project's labels, flipped
  (added when absent, removed when present): always a wrong set, one label off.
- The metric is micro-F1 (scikit-learn's ``f1_score(average="micro")`` on ``MultiLabelBinarizer``
  matrices in the project's label order) of the champion's test predictions
  (``POST /predict``, which answers ``{"predictions": [{"labels": [...], "probabilities": {...}}]}``).
- The reference: the same featurizer as the single-label reference (fitted on the pool) +
  one-vs-rest logistic regression, C in {0.1, 1, 10, 100} chosen by 5-fold cross-validation on
  micro-F1 over the whole labeled pool, scored on the test split.
"""

from __future__ import annotations

import json
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, KFold, train_test_split
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import MultiLabelBinarizer

from common import DATA_DIR, request

from active_learning.featurize import INPUT_KIND, fit_featurizer  # noqa: E402

MULTI_LABEL_CORPORA = {"goemotions": DATA_DIR / "goemotions_ekman.jsonl"}
DIGIT_ATTRIBUTES = {
    "even": {0, 2, 4, 6, 8},
    "prime": {2, 3, 5, 7},
    "at_least_5": {5, 6, 7, 8, 9},
    "has_closed_loop": {0, 6, 8, 9},
}


def is_multi_label(dataset: str) -> bool:
    """``goemotions``, ``digits_multi``, or a JSONL file whose first row carries a ``labels`` list."""
    if dataset in MULTI_LABEL_CORPORA or dataset == "digits_multi":
        return True
    path = Path(dataset)
    if not path.is_file():
        return False
    with path.open(encoding="utf-8") as f:
        first = next((line for line in f if line.strip()), "{}")
    return isinstance(json.loads(first).get("labels"), list)


def digit_attributes(digit: int) -> list[str]:
    return sorted(name for name, digits in DIGIT_ATTRIBUTES.items() if digit in digits)


def load_multilabel(name: str, rows: int | None, seed: int) -> list[dict]:
    """Rows ``{"external_id", "text" or "features", "labels"}``, labels sorted; ``rows``: a seeded sample."""
    if name == "digits_multi":
        from sklearn.datasets import load_digits

        digits = load_digits()
        data = [{"external_id": f"d{i}", "features": digits.data[i].tolist(),
                 "labels": digit_attributes(int(digits.target[i]))} for i in range(len(digits.target))]
    else:
        path = MULTI_LABEL_CORPORA.get(name, Path(name))
        data = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        for row in data:
            row["labels"] = sorted(str(label) for label in row["labels"])
    if rows and rows < len(data):
        data, _ = train_test_split(data, train_size=rows, random_state=seed)
    return data


def label_names(rows: list[dict]) -> list[str]:
    """The project's labels (sorted): every label some row carries."""
    return sorted({label for r in rows for label in r["labels"]})


def random_split(rows: list[dict], test_size: float, seed: int) -> tuple[list[dict], list[dict]]:
    pool, test = train_test_split(rows, test_size=test_size, random_state=seed)
    return pool, test


def binarize(sets: list[list[str]], labels: list[str]) -> np.ndarray:
    return MultiLabelBinarizer(classes=labels).fit_transform(sets)


def micro_f1(truth: list[list[str]], predicted: list[list[str]], labels: list[str]) -> float:
    return float(f1_score(binarize(truth, labels), binarize(predicted, labels), average="micro", zero_division=0))


def _inputs(rows: list[dict], kind: str):
    return np.array([r["features"] for r in rows]) if kind == "vector" else [r.get("text", "") for r in rows]


def reference_multilabel(pool: list[dict], test: list[dict], labels: list[str], featurizer: str,
                         seed: int) -> tuple[float, float]:
    """``(test micro-F1, C)`` of the cross-validated one-vs-rest reference trained on the whole pool."""
    kind = INPUT_KIND[featurizer]
    features = fit_featurizer(featurizer, _inputs(pool, kind))
    y = binarize([r["labels"] for r in pool], labels)
    search = GridSearchCV(OneVsRestClassifier(LogisticRegression(max_iter=2000)), {"estimator__C": [0.1, 1, 10, 100]},
                          scoring="f1_micro", cv=KFold(5, shuffle=True, random_state=seed))
    search.fit(features.transform(_inputs(pool, kind)), y)
    predicted = search.best_estimator_.predict(features.transform(_inputs(test, kind)))
    truth = binarize([r["labels"] for r in test], labels)
    return (float(f1_score(truth, predicted, average="micro", zero_division=0)),
            float(search.best_params_["estimator__C"]))


class MultiLabelAnnotator:
    """Gives the true set, or at rate ``noise`` the true set with one random label's membership flipped."""

    def __init__(self, truth: dict[str, list[str]], labels: list[str], *, noise: float, seed: int) -> None:
        self.truth, self.labels, self.noise = truth, labels, noise
        self.rng = np.random.default_rng(seed + 1000)

    def label(self, external_id: str) -> list[str]:
        right = self.truth[external_id]
        if self.noise <= 0 or self.rng.random() >= self.noise:
            return list(right)
        flipped = str(self.rng.choice(self.labels))
        given = set(right) ^ {flipped}
        return [label for label in self.labels if label in given]


def micro_f1_of_champion(conn: HTTPConnection, project_id: int, token: str, test: list[dict],
                         labels: list[str]) -> float:
    """Micro-F1 of the champion's predicted sets on the test rows (0 while there is no model)."""
    inputs = [{k: v for k, v in r.items() if k in ("features", "text")} for r in test]
    predicted: list[list[str]] = []
    for start in range(0, len(inputs), 5000):
        status, body = request(conn, "POST", f"/api/v1/projects/{project_id}/predict", token,
                               {"examples": inputs[start:start + 5000]})
        if status != 200:
            return 0.0
        predicted += [list(p["labels"]) for p in body["predictions"]]
    return micro_f1([r["labels"] for r in test], predicted, labels)


def label_counts(rows: list[dict]) -> str:
    """``"n with none / one / two or more"``, for the run's header."""
    sizes = [len(r["labels"]) for r in rows]
    return (f"{sum(s == 0 for s in sizes)} with no label / {sum(s == 1 for s in sizes)} with one / "
            f"{sum(s >= 2 for s in sizes)} with two or more")
