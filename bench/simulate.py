"""The evaluation suite: active learning and label checks on real data, through the service's API.

    cd bench && ../.venv/bin/python simulate.py --dataset movies --strategies margin random --seeds 0 1 2
    cd bench && ../.venv/bin/python simulate.py --dataset digits --noise 0.1 --noise-kind uniform

Datasets: ``digits`` (scikit-learn), ``movies`` and ``snips`` (real corpora in ``bench/data``, see
its README for sources and licenses), or a JSONL file in the import format. A stratified test split
is held out; the rest is imported with its labels hidden. A simulated annotator then loops
``next`` -> ``labels`` through the HTTP API, labeling what the queue serves (the true label, or with
``--noise`` a wrong one at that rate: ``uniform`` over the other classes, or ``confusable``: the
class the reference model confuses it with most). The project retrains every ``--threshold``
labels; the annotator waits for each run, as a human's pace would allow. After each retrain the
champion predicts the test split (``/predict``), and the open flags are scored against the wrong
labels given so far.

Multi-label datasets: ``goemotions`` (``bench/data``), ``digits_multi`` (attributes of the true
digit), or a JSONL file whose rows carry a ``labels`` list. The project is created with ``task:
multi_label``, the annotator submits sets (with ``--noise`` p: for a share p of its annotations,
the true set with one random label's membership flipped), the test split is a seeded random one,
and the metric is micro-F1, the reference one-vs-rest; ``multilabel_sim.py`` says how.

Reference: the same featurizer (fitted on the pool) + logistic regression with the best C of
{0.1, 1, 10, 100} by 5-fold cross-validation on the whole labeled pool, scored on the test split.
Printed per strategy: labels to 90/95/99% of the reference accuracy, the area under the learning
curve (mean accuracy over the budget), and, per seed, the champion of a project whose whole pool
was imported with its labels ("full pool").
"""

from __future__ import annotations

import argparse
import json
import re
import time
from http.client import HTTPConnection
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

import multilabel_sim as ml
from common import DATA_DIR, admin_token, fresh_database, import_rows, machine, request, served, today

from active_learning.featurize import INPUT_KIND, fit_featurizer, resolve_featurizer  # noqa: E402

CORPORA = {"movies": DATA_DIR / "movie_snippets.jsonl", "snips": DATA_DIR / "snips_intents.jsonl"}
TARGETS = (0.90, 0.95, 0.99)


def load_dataset(name: str, label_field: str, rows: int | None, seed: int) -> list[dict]:
    if name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        data = [{"external_id": f"d{i}", "features": digits.data[i].tolist(), "label": str(int(digits.target[i]))}
                for i in range(len(digits.target))]
    else:
        path = CORPORA.get(name, Path(name))
        data = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for row in data:
            row["label"] = str(row.pop(label_field))
    if rows and rows < len(data):
        data, _ = train_test_split(data, train_size=rows, random_state=seed, stratify=[r["label"] for r in data])
    return data


def model_input(rows: list[dict], kind: str):
    return np.array([r["features"] for r in rows]) if kind == "vector" else [r.get("text", "") for r in rows]


def reference(pool: list[dict], test: list[dict], featurizer: str, seed: int) -> tuple[float, float, np.ndarray, list[str]]:
    """``(accuracy, C, confusion matrix on test, classes)`` of the cross-validated reference model."""
    kind = INPUT_KIND[featurizer]
    features = fit_featurizer(featurizer, model_input(pool, kind))
    y = np.array([r["label"] for r in pool])
    search = GridSearchCV(LogisticRegression(max_iter=2000), {"C": [0.1, 1, 10, 100]},
                          cv=StratifiedKFold(5, shuffle=True, random_state=seed)).fit(features.transform(model_input(pool, kind)), y)
    predicted = search.best_estimator_.predict(features.transform(model_input(test, kind)))
    truth = np.array([r["label"] for r in test])
    classes = sorted(set(y))
    return (float(np.mean(predicted == truth)), float(search.best_params_["C"]),
            confusion_matrix(truth, predicted, labels=classes), classes)


class Annotator:
    """Gives the true label, or at rate ``noise`` a wrong one (uniform, or the most confusable)."""

    def __init__(self, truth: dict[str, str], classes: list[str], confusion: np.ndarray, *, noise: float, kind: str,
                 seed: int) -> None:
        self.truth, self.classes, self.noise, self.kind = truth, classes, noise, kind
        self.rng = np.random.default_rng(seed + 1000)
        off = confusion.astype(float).copy()
        np.fill_diagonal(off, -1)
        self.confused_with = {c: classes[int(off[i].argmax())] for i, c in enumerate(classes)}

    def label(self, external_id: str) -> str:
        right = self.truth[external_id]
        if self.noise <= 0 or self.rng.random() >= self.noise:
            return right
        if self.kind == "confusable":
            return self.confused_with[right]
        return str(self.rng.choice([c for c in self.classes if c != right]))


def all_open_flags(conn: HTTPConnection, project_id: int, token: str) -> list[dict]:
    flags, offset = [], 0
    while True:
        _, body = request(conn, "GET", f"/api/v1/projects/{project_id}/flags?status=open&limit=1000&offset={offset}", token)
        flags += body["flags"]
        if len(body["flags"]) < 1000:
            return flags
        offset += 1000


def accuracy_of_champion(conn: HTTPConnection, project_id: int, token: str, test: list[dict]) -> float:
    inputs = [{k: v for k, v in r.items() if k in ("features", "text")} for r in test]
    truth = np.array([r["label"] for r in test])
    predicted = []
    for start in range(0, len(inputs), 5000):
        status, body = request(conn, "POST", f"/api/v1/projects/{project_id}/predict", token,
                               {"examples": inputs[start:start + 5000]})
        if status != 200:
            return 0.0
        predicted += [p["label"] for p in body["predictions"]]
    return float(np.mean(np.array(predicted) == truth))


def strategy_settings(spec: str) -> dict:
    """Project settings of a ``--strategies`` entry: a strategy, then ``+setting=value`` pairs
    (values in JSON), e.g. ``margin+typical_picks=false``."""
    strategy, *pairs = spec.split("+")
    settings = {"strategy": strategy}
    for pair in pairs:
        key, _, value = pair.partition("=")  # no "=": value "" is not JSON
        try:
            settings[key] = json.loads(value)
        except json.JSONDecodeError:
            key = ""
        if not key:
            raise SystemExit(f"--strategies {spec!r}: {pair!r} is not setting=value with a JSON value "
                             "(true, 10, \"text\")")
    return settings


def simulate(url: str, pool: list[dict], test: list[dict], labels: list[str], annotator, *, strategy: str,
             threshold: int, budget: int, seed: int, featurizer: str = "auto", multi_label: bool = False) -> dict:
    """One annotator's session; returns the learning curve and, per retrain, flag and warning counts.
    ``multi_label``: a ``task: multi_label`` project, sets submitted as ``labels``, micro-F1 curve."""
    token = admin_token(url, name=re.sub(r"[^\w.@-]", "_", f"admin{seed}{strategy}"))
    curve, checks = [], []
    wrong: set[str] = set()  # external ids labeled wrong so far
    warned: set[str] = set()
    with served(url, workers=1, env={"LABELING_JOBS": "thread"}) as (host, port, _):
        conn = HTTPConnection(host, port, timeout=600)
        status, body = request(conn, "POST", "/api/v1/projects", token, {
            "name": f"sim-{strategy}-{seed}", "labels": labels,
            # queue_seed: the import's random keys and the queue's random picks replay with the seed.
            "settings": {"retrain_threshold": threshold, "queue_seed": seed, "featurizer": featurizer,
                         **({"task": "multi_label"} if multi_label else {}), **strategy_settings(strategy)}})
        assert status == 201, body
        project_id = body["id"]
        hidden = [{k: v for k, v in r.items() if k not in ("label", "labels")} for r in pool]
        for start in range(0, len(hidden), 5000):
            import_rows(conn, project_id, token, hidden[start:start + 5000])
        for n in range(1, budget + 1):
            wait_for_runs(conn, project_id, token)
            status, body = request(conn, "GET", f"/api/v1/projects/{project_id}/next", token)
            if status == 204:
                break
            external_id = body["example"]["external_id"]
            given = annotator.label(external_id)
            if given != annotator.truth[external_id]:
                wrong.add(external_id)
            status, answer = request(conn, "POST", f"/api/v1/projects/{project_id}/labels", token, {
                "example_id": body["example"]["id"], "labels" if multi_label else "label": given,
                "lease_id": body["lease"]["id"]})
            assert status == 201, answer
            if answer.get("warning"):
                warned.add(external_id)
            if n % threshold == 0:
                wait_for_runs(conn, project_id, token)
                curve.append((n, champion_score(conn, project_id, token, test, labels, multi_label)))
                flags = all_open_flags(conn, project_id, token)
                flagged = {f["external_id"] for f in flags}
                sure = {f["external_id"] for f in flags if f["score"] >= 0.95}  # what a stricter threshold would keep
                checks.append({"n": n, "wrong": len(wrong), "flags": len(flagged), "true_flags": len(flagged & wrong),
                               "sure": len(sure), "true_sure": len(sure & wrong),
                               "warned": len(warned), "true_warnings": len(warned & wrong)})
        _, body = request(conn, "GET", f"/api/v1/projects/{project_id}/models?limit=1000", token)
    rejected = [m for m in body["models"] if m["status"] == "rejected"]
    chosen = [(m["version"], m["n_labels"], m["status"], (m["details"].get("hyperparameters") or {}).get("params"),
               m["metrics"].get("macro_f1"), (m["details"].get("champion") or {}).get("macro_f1"),
               m["details"].get("label_check") or {}, m["details"].get("out_of_fold_kappa"))
              for m in sorted(body["models"], key=lambda m: m["version"])]
    return {"curve": curve, "checks": checks, "versions": len(body["models"]), "chosen": chosen,
            "rejected": [(m["version"], m["n_labels"], m["details"].get("decision")) for m in rejected]}


def full_pool_champion(url: str, pool: list[dict], test: list[dict], labels: list[str], seed: int,
                       featurizer: str = "auto", multi_label: bool = False) -> float:
    """Test accuracy (micro-F1) of the champion of a project whose whole pool is imported with its labels."""
    token = admin_token(url, name=f"full{seed}")
    with served(url, workers=1, env={"LABELING_JOBS": "thread"}) as (host, port, _):
        conn = HTTPConnection(host, port, timeout=1800)
        status, body = request(conn, "POST", "/api/v1/projects", token, {
            "name": f"full-{seed}", "labels": labels,
            "settings": {"retrain_threshold": 100000, "queue_seed": seed, "featurizer": featurizer,
                         **({"task": "multi_label"} if multi_label else {})}})
        project_id = body["id"]
        import_rows(conn, project_id, token, pool)
        wait_for_runs(conn, project_id, token)
        status, body = request(conn, "POST", f"/api/v1/projects/{project_id}/retrain", token)
        wait_for_runs(conn, project_id, token)
        return champion_score(conn, project_id, token, test, labels, multi_label)


def champion_score(conn: HTTPConnection, project_id: int, token: str, test: list[dict], labels: list[str],
                   multi_label: bool) -> float:
    if multi_label:
        return ml.micro_f1_of_champion(conn, project_id, token, test, labels)
    return accuracy_of_champion(conn, project_id, token, test)


def wait_for_runs(conn: HTTPConnection, project_id: int, token: str) -> None:
    while True:
        status, body = request(conn, "GET", f"/api/v1/projects/{project_id}/runs?limit=1", token)
        if not body["runs"] or body["runs"][0]["status"] not in ("queued", "running"):
            return
        time.sleep(0.05)


def labels_to_reach(curve: list[tuple[int, float]], target: float) -> int | None:
    return next((n for n, acc in curve if acc >= target), None)


def area(curve: list[tuple[int, float]], budget: int) -> float:
    """Mean accuracy over the budget (a step curve; before the first point, 0)."""
    if not curve:
        return 0.0
    points = [(0, 0.0)] + curve + [(budget, curve[-1][1])]
    return sum((b[0] - a[0]) * a[1] for a, b in zip(points, points[1:])) / budget


def mean_spread(values: list) -> str:
    if any(v is None for v in values):
        reached = [v for v in values if v is not None]
        return f"— ({len(reached)}/{len(values)} reached)"
    return f"{np.mean(values):.0f} ± {np.std(values):.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="digits", help="digits, movies, snips, or a JSONL file in the import format; "
                                                             "multi-label: goemotions, digits_multi, or a JSONL file "
                                                             "whose rows carry a labels list")
    parser.add_argument("--label-field", default="label")
    parser.add_argument("--rows", type=int, default=None, help="a stratified sample of this many rows (all by default; "
                                                                 "a seeded random one for multi-label data)")
    parser.add_argument("--strategies", nargs="+", default=None,
                        help="the projects' strategy settings, passed as given, each optionally followed by "
                             "+setting=value pairs, e.g. margin+typical_picks=false (default: margin random; "
                             "multi-label: min_confidence random)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threshold", type=int, default=10)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--test-size", type=float, default=0.3)
    parser.add_argument("--noise", type=float, default=0.0, help="share of labels the annotator gets wrong (multi-label: "
                                                                 "one random label's membership flipped)")
    parser.add_argument("--noise-kind", default="uniform", choices=["uniform", "confusable"])
    parser.add_argument("--full-pool", action="store_true", help="also train a champion on the whole labeled pool")
    parser.add_argument("--featurizer", default="auto", help="the projects' featurizer setting (the reference keeps "
                                                              "TF-IDF for text, vectors for digits)")
    parser.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--versions", action="store_true", help="print each model version: labels, status, the "
                        "hyperparameters chosen, holdout macro-F1 of the candidate / the champion then, the "
                        "search's out-of-fold kappa (typical picks below 0.4)")
    args = parser.parse_args()
    args.own_reference = {}
    multi_label = ml.is_multi_label(args.dataset)
    if multi_label and args.noise_kind != "uniform":
        parser.error("--noise-kind confusable is for single-label data (a multi-label annotator flips one label)")
    args.strategies = args.strategies or (["min_confidence", "random"] if multi_label else ["margin", "random"])
    print(f"# bench/simulate.py on {machine()}, {today()}: {args.dataset}, retrain every {args.threshold} labels, "
          f"budget {args.budget}, seeds {args.seeds}, annotator noise {args.noise} "
          f"({'one label flipped' if multi_label else args.noise_kind}), featurizer {args.featurizer}"
          + (", multi-label (micro-F1)" if multi_label else ""))
    results: dict[str, list[dict]] = {s: [] for s in args.strategies}
    fulls, references = [], []
    for seed in args.seeds:
        pool, test, labels, ref, make_annotator = (prepare_multi_label if multi_label else prepare)(args, seed)
        references.append(ref)
        if args.full_pool:
            with fresh_database(args.db) as url:
                fulls.append(full_pool_champion(url, pool, test, labels, seed, args.featurizer, multi_label))
            print(f"seed {seed}: full-pool champion {fulls[-1]:.3f} ({fulls[-1] - ref:+.3f} vs reference)", flush=True)
        for strategy in args.strategies:
            annotator = make_annotator()
            with fresh_database(args.db) as url:
                t0 = time.perf_counter()
                out = simulate(url, pool, test, labels, annotator, strategy=strategy, threshold=args.threshold,
                               budget=args.budget, seed=seed, featurizer=args.featurizer, multi_label=multi_label)
            out.update(reference=ref, seconds=time.perf_counter() - t0,
                       reach=[labels_to_reach(out["curve"], t * ref) for t in TARGETS], auc=area(out["curve"], args.budget))
            results[strategy].append(out)
            curve = out["curve"]
            if seed in args.own_reference:
                print(f"{strategy:8s} seed {seed}: 90/95/99% of the {args.project_featurizer} reference at "
                      f"{[labels_to_reach(curve, t * args.own_reference[seed]) for t in TARGETS]} labels")
            print(f"{strategy:8s} seed {seed}: 90/95/99% at {out['reach']} labels, area {out['auc']:.3f}, final "
                  f"{curve[-1][1] if curve else 0:.3f} ({out['seconds']:.0f} s); curve "
                  + " ".join(f"{n}:{a:.3f}" for n, a in curve[:: max(1, len(curve) // 10)]), flush=True)
            print(f"    {out['versions']} model versions, {len(out['rejected'])} kept out"
                  + "".join(f"\n      v{v} ({n} labels): {why}" for v, n, why in out["rejected"]))
            if args.versions:
                print("    " + "; ".join(f"v{v} {n} {status[:4]} C {p['C'] if p else '-'} {(p or {}).get('class_weight') or '-'} "
                                         f"F1 {f1 if f1 is None else round(f1, 3)}/{ch if ch is None else round(ch, 3)}"
                                         f"{'' if kappa is None else f' oof kappa {kappa:.2f}'}{check_summary(check)}"
                                         for v, n, status, p, f1, ch, check, kappa in out["chosen"]))
            if args.noise or any(c["flags"] for c in out["checks"]):
                print_checks(out["checks"])
    print_tables(args, results, references, fulls, "micro-F1" if multi_label else "accuracy")


def prepare(args, seed: int):
    """A single-label seed: rows, stratified split, reference; ``(pool, test, labels, reference, annotator maker)``."""
    rows = load_dataset(args.dataset, args.label_field, args.rows, seed)
    labels = sorted({r["label"] for r in rows})
    featurizer = resolve_featurizer("auto", has_vectors="features" in rows[0])
    pool, test = train_test_split(rows, test_size=args.test_size, random_state=seed, stratify=[r["label"] for r in rows])
    ref, ref_c, confusion, classes = reference(pool, test, featurizer, seed)
    print(f"seed {seed}: {len(pool)} pool / {len(test)} test rows, {len(labels)} classes; reference ({featurizer} "
          f"+ logistic regression, C = {ref_c:g} by 5-fold CV) test accuracy {ref:.3f}", flush=True)
    second_reference(args, seed, featurizer, len(pool), lambda f: reference(pool, test, f, seed)[0])
    truth = {r["external_id"]: r["label"] for r in pool}
    return pool, test, labels, ref, lambda: Annotator(truth, classes, confusion, noise=args.noise, kind=args.noise_kind,
                                                      seed=seed)


def prepare_multi_label(args, seed: int):
    """A multi-label seed: rows, seeded random split, one-vs-rest reference (micro-F1); as ``prepare``."""
    rows = ml.load_multilabel(args.dataset, args.rows, seed)
    labels = ml.label_names(rows)
    featurizer = resolve_featurizer("auto", has_vectors="features" in rows[0])
    pool, test = ml.random_split(rows, args.test_size, seed)
    ref, ref_c = ml.reference_multilabel(pool, test, labels, featurizer, seed)
    print(f"seed {seed}: {len(pool)} pool / {len(test)} test rows, {len(labels)} labels ({ml.label_counts(rows)}); "
          f"reference ({featurizer} + one-vs-rest logistic regression, C = {ref_c:g} by 5-fold CV on micro-F1) "
          f"test micro-F1 {ref:.3f}", flush=True)
    second_reference(args, seed, featurizer, len(pool), lambda f: ml.reference_multilabel(pool, test, labels, f, seed)[0])
    truth = {r["external_id"]: r["labels"] for r in pool}
    return pool, test, labels, ref, lambda: ml.MultiLabelAnnotator(truth, labels, noise=args.noise, seed=seed)


def second_reference(args, seed: int, reference_featurizer: str, pool_size: int, score) -> None:
    """When the projects read other features than the reference (sentence embeddings beside TF-IDF:
    a setting, or what "auto" picks with the extra installed), their own reference too."""
    from active_learning import embeddings
    from labeling.features import AUTO_EMBEDDINGS_MAX_POOL

    ours = resolve_featurizer(args.featurizer, has_vectors=reference_featurizer == "features",
                              embeddings_ok=embeddings.available() and pool_size <= AUTO_EMBEDDINGS_MAX_POOL)
    if ours != reference_featurizer:
        args.project_featurizer = ours
        args.own_reference[seed] = score(ours)
        print(f"seed {seed}: reference with the projects' featurizer ({ours}) {args.own_reference[seed]:.3f}", flush=True)


def check_summary(check: dict) -> str:
    """A version's label check in a few words: why it judged nothing, or what it flagged."""
    if check.get("skipped"):
        kappa = re.search(r"kappa (-?[0-9.]+)", check["skipped"])
        return f" check: none (kappa {kappa.group(1)})" if kappa else " check: none"
    if check.get("flagged"):
        return f" check: {check['flagged']} flagged (noise {check.get('noise_rate')})"
    return ""


def print_checks(checks: list[dict]) -> None:
    worst = max(checks, key=lambda c: (c["flags"] - c["true_flags"]) / c["n"], default=None)
    if worst is not None:
        print(f"    most false flags: {100 * (worst['flags'] - worst['true_flags']) / worst['n']:.2f} per 100 labels "
              f"({worst['flags'] - worst['true_flags']} at {worst['n']} labels)")
    print("    labels | wrong given | open flags | on wrong | precision | recall | false flags / 100 correct | "
          "warnings precision / recall | flags scored >= 0.95: precision / recall")
    for c in checks:
        correct = c["n"] - c["wrong"]
        precision = c["true_flags"] / c["flags"] if c["flags"] else float("nan")
        recall = c["true_flags"] / c["wrong"] if c["wrong"] else float("nan")
        wp = c["true_warnings"] / c["warned"] if c["warned"] else float("nan")
        wr = c["true_warnings"] / c["wrong"] if c["wrong"] else float("nan")
        print(f"    {c['n']:6d} | {c['wrong']:11d} | {c['flags']:10d} | {c['true_flags']:8d} | {precision:9.2f} | "
              f"{recall:6.2f} | {100 * (c['flags'] - c['true_flags']) / max(correct, 1):25.2f} | {wp:.2f} / {wr:.2f} | "
              f"{c['true_sure'] / c['sure'] if c['sure'] else float('nan'):.2f} / "
              f"{c['true_sure'] / c['wrong'] if c['wrong'] else float('nan'):.2f}")


def print_tables(args, results: dict[str, list[dict]], references: list[float], fulls: list[float],
                 metric: str = "accuracy") -> None:
    print(f"\nReference {metric} {np.mean(references):.3f} ± {np.std(references):.3f}"
          + (f"; full-pool champion {np.mean(fulls):.3f} ± {np.std(fulls):.3f} "
             f"({np.mean(fulls) - np.mean(references):+.3f})" if fulls else ""))
    if metric == "accuracy":
        print("\n| strategy | labels to 90% | to 95% | to 99% | area under the curve | per seed (95%) |")
    else:
        print(f"\n| strategy | labels to 90% of the reference {metric} | to 95% | to 99% | area under the {metric} curve "
              f"| per seed (95%) |")
    print("|---|---|---|---|---|---|")
    for strategy, outs in results.items():
        reach = list(zip(*[o["reach"] for o in outs]))
        aucs = [o["auc"] for o in outs]
        print(f"| {strategy} | {mean_spread(list(reach[0]))} | {mean_spread(list(reach[1]))} | {mean_spread(list(reach[2]))} "
              f"| {np.mean(aucs):.3f} ± {np.std(aucs):.3f} | {list(reach[1])} |")
    if "random" in results and len(results) > 1:
        random95 = [o["reach"][1] for o in results["random"]]
        for strategy, outs in results.items():
            if strategy == "random":
                continue
            ratios = [o["reach"][1] / r if o["reach"][1] and r else None for o, r in zip(outs, random95)]
            print(f"{strategy} / random, labels to 95% per seed: "
                  + ", ".join("—" if r is None else f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
