"""Multi-label projects through the API: an annotation is a set of labels (possibly empty) in
import rows, submits, answers, flags and exports, and the single-label field is refused."""

from __future__ import annotations

import io
import json
import uuid

import numpy as np
import pytest
from sqlalchemy import func, select

from labeling.db import utcnow
from labeling.models import Example, Label, LabelFlag
from tests.conftest import auth

TAGS = ["sports", "politics", "tech"]
ROWS = [{"external_id": f"m{i}", "text": f"a news item {i}"} for i in range(8)]


@pytest.fixture
def multi(client, admin_token):
    def make(rows=ROWS, settings=None):
        created = client.post("/api/v1/projects", headers=auth(admin_token), json={
            "name": f"multi-{uuid.uuid4().hex[:8]}", "labels": TAGS,
            "settings": {"task": "multi_label", "holdout_fraction": 0, **(settings or {})}})
        assert created.status_code == 201, created.json
        project_id = created.json["id"]
        if rows:
            imported = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                                   json={"examples": rows})
            assert imported.status_code == 201, imported.json
        return project_id
    return make


def lease(client, token, project_id):
    response = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token))
    assert response.status_code == 200
    return response.json


def submit(client, token, project_id, example_id, **body):
    return client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                       json={"example_id": example_id, **body})


def export(client, token, project_id, query):
    response = client.get(f"/api/v1/projects/{project_id}/export?{query}", headers=auth(token))
    assert response.status_code == 200
    return response.data


def test_submit_takes_a_set_and_answers_it_in_the_project_order(client, admin_token, make_user, multi):
    project_id = multi()
    project = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json
    assert project["task_kind"] == "multi_label" and project["settings"]["task"] == "multi_label"
    _, token = make_user("ann")
    example_id = lease(client, token, project_id)["example"]["id"]
    for body, field in (({"label": "tech"}, "label"), ({"labels": "tech"}, "labels"),
                        ({"labels": ["tech", "weather"]}, "labels"), ({"labels": ["tech", "tech"]}, "labels"),
                        ({}, "labels")):
        refused = submit(client, token, project_id, example_id, **body)
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == field, (body, refused.json)
    done = submit(client, token, project_id, example_id, labels=["tech", "sports"], idempotency_key="k1")
    assert done.status_code == 201 and done.json["label"]["value"] == ["sports", "tech"]
    again = submit(client, token, project_id, example_id, labels=["politics"], idempotency_key="k1")
    assert again.status_code == 201 and again.json["label"]["id"] == done.json["label"]["id"]  # idempotent
    # "None of these" is an annotation too.
    other = lease(client, token, project_id)["example"]["id"]
    empty = submit(client, token, project_id, other, labels=[])
    assert empty.status_code == 201 and empty.json["label"]["value"] == []
    undone = client.post(f"/api/v1/labels/{empty.json['label']['id']}/undo", headers=auth(token))
    assert undone.status_code == 200 and undone.json["undo"]["value"] is None
    assert lease(client, token, project_id)["example"]["id"] == other  # back in the queue


def test_a_single_label_project_refuses_labels(client, admin_token, make_user, make_project):
    project_id = make_project(n=2)
    _, token = make_user("ann")
    example_id = lease(client, token, project_id)["example"]["id"]
    refused = submit(client, token, project_id, example_id, labels=["pos"])
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "labels"
    assert submit(client, token, project_id, example_id, label="pos").status_code == 201


def test_overlap_gives_a_per_label_majority_with_its_agreement(client, admin_token, make_user, multi):
    project_id = multi(rows=ROWS[:1], settings={"overlap": 3})
    for i, chosen in enumerate((["sports", "tech"], ["tech"], ["sports", "tech"])):
        _, token = make_user(f"ann{i}")
        example = lease(client, token, project_id)["example"]["id"]
        assert submit(client, token, project_id, example, labels=chosen).status_code == 201
    _, late = make_user("late")
    assert client.get(f"/api/v1/projects/{project_id}/next", headers=auth(late)).status_code == 204
    [row] = [json.loads(line) for line in export(client, admin_token, project_id, "format=jsonl").splitlines()]
    assert row["labels"] == ["sports", "tech"] and row["n_annotations"] == 3 and row["agreement"] == round(2 / 3, 4)
    assert "label" not in row
    events = [json.loads(line) for line in export(client, admin_token, project_id, "format=jsonl&annotations=all").splitlines()]
    assert [e["labels"] for e in events] == [["sports", "tech"], ["tech"], ["sports", "tech"]]


def test_import_rows_carry_labels_and_bad_ones_name_the_field(client, admin_token, multi):
    project_id = multi(rows=[])
    url = f"/api/v1/projects/{project_id}/examples"
    bad = client.post(url, headers=auth(admin_token), json={"examples": [
        {"external_id": "a", "text": "x", "labels": ["tech"]},
        {"external_id": "b", "text": "x", "labels": ["weather"]},
        {"external_id": "c", "text": "x", "label": "tech"},
        {"external_id": "d", "text": "x", "labels": "tech|sports"}]})  # a CSV cell's form is no list in JSON
    assert bad.status_code == 422
    assert [(e["field"], e["line"]) for e in bad.json["errors"]] == [("labels", 2), ("label", 3), ("labels", 4)]
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]["examples"] == 0
    csv_file = "external_id,text,labels\na,first,tech|sports\nb,second,[]\nc,third,\n"
    done = client.post(url, headers=auth(admin_token), data={"file": (io.BytesIO(csv_file.encode()), "rows.csv")})
    assert done.status_code == 201 and done.json["labels"] == 2, done.json
    rows = {r["external_id"]: r for r in map(json.loads, export(client, admin_token, project_id,
                                                                  "format=jsonl&include_unlabeled=true").splitlines())}
    assert (rows["a"]["labels"], rows["b"]["labels"], rows["c"]["labels"]) == (["sports", "tech"], [], None)


def test_every_export_format_imports_straight_back(client, admin_token, make_user, multi, tmp_path):
    import datasets

    rows = [{**row, **({"labels": [TAGS[i % 3]] if i % 4 else []} if i < 6 else {})} for i, row in enumerate(ROWS)]
    rows[1]["labels"] = ["sports", "tech"]
    project_id = multi(rows=rows)
    original = export(client, admin_token, project_id, "format=jsonl&include_unlabeled=true")
    expected = {r["external_id"]: r["labels"] for r in map(json.loads, original.splitlines())}
    assert expected["m1"] == ["sports", "tech"] and expected["m0"] == [] and expected["m7"] is None
    for fmt in ("jsonl", "csv", "parquet"):
        data = export(client, admin_token, project_id, f"format={fmt}&include_unlabeled=true")
        path = tmp_path / f"export.{fmt}"
        path.write_bytes(data)
        copy = multi(rows=[])
        with path.open("rb") as handle:
            response = client.post(f"/api/v1/projects/{copy}/examples", headers=auth(admin_token),
                                   data={"file": (handle, path.name)})
        assert response.status_code == 201, (fmt, response.json)
        again = export(client, admin_token, copy, "format=jsonl&include_unlabeled=true")
        assert {r["external_id"]: r["labels"] for r in map(json.loads, again.splitlines())} == expected, fmt
        if fmt != "csv":
            loaded = datasets.load_dataset("json" if fmt == "jsonl" else "parquet", data_files=str(path), split="train")
            assert {r["external_id"]: r["labels"] for r in loaded} == expected, fmt


def test_flags_show_sets_and_a_correction_takes_labels(app, client, admin_token, make_user, multi, session):
    project_id = multi(rows=[{**ROWS[0], "labels": ["tech"]}])
    _, reviewer = make_user("rita", "reviewer")
    session.rollback()
    example_id = session.scalar(select(Example.id).where(Example.project_id == project_id))
    label_id = session.scalar(select(Label.id).where(Label.example_id == example_id))
    with app.extensions["hitl_sessionmaker"]() as s:
        flag = LabelFlag(project_id=project_id, label_id=label_id, example_id=example_id, given='["tech"]',
                         suggested='["sports", "tech"]', score=0.9, reason="model_disagrees", status="open",
                         created_at=utcnow())
        s.add(flag)
        s.commit()
        flag_id = flag.id
    [shown] = client.get(f"/api/v1/projects/{project_id}/flags", headers=auth(reviewer)).json["flags"]
    assert (shown["given"], shown["suggested"]) == (["tech"], ["sports", "tech"])
    bad = client.post(f"/api/v1/flags/{flag_id}", headers=auth(reviewer), json={"action": "correct", "labels": ["x"]})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "labels"
    fixed = client.post(f"/api/v1/flags/{flag_id}", headers=auth(reviewer),
                        json={"action": "correct", "labels": ["politics"]})
    assert fixed.status_code == 200 and fixed.json["flag"]["status"] == "corrected"
    history = client.get(f"/api/v1/examples/{example_id}", headers=auth(reviewer)).json
    assert [(l["value"], l["current"]) for l in history["labels"]] == [(["tech"], False), (["politics"], True)]
    relabel = client.post(f"/api/v1/examples/{example_id}/relabel", headers=auth(reviewer), json={"label": "tech"})
    assert relabel.status_code == 422 and relabel.json["errors"][0]["field"] == "label"


def test_the_task_is_fixed_once_there_are_labels_and_strategies_follow_it(client, admin_token, multi, make_project):
    project_id = multi(rows=[{**ROWS[0], "labels": ["tech"]}, ROWS[1]])
    url = f"/api/v1/projects/{project_id}"
    assert client.get(url, headers=auth(admin_token)).json["settings"]["strategy"] == "min_confidence"  # its default
    refused = client.patch(url, headers=auth(admin_token), json={"settings": {"task": "single_label"}})
    assert refused.status_code == 409 and "settings.task" in refused.json["error"]
    bad = client.patch(url, headers=auth(admin_token), json={"settings": {"task": "ranking"}})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "settings.task"
    other_task = client.patch(url, headers=auth(admin_token), json={"settings": {"strategy": "margin"}})
    assert other_task.status_code == 422 and other_task.json["errors"][0]["field"] == "settings.strategy"
    single = make_project(n=1)
    refused = client.patch(f"/api/v1/projects/{single}", headers=auth(admin_token),
                           json={"settings": {"strategy": "min_confidence"}})
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "settings.strategy"
    unknown = client.patch(f"/api/v1/projects/{single}", headers=auth(admin_token), json={"settings": {"strategy": "foo"}})
    assert unknown.json["errors"][0]["message"] == ("a single_label project's strategy is one of "
                                                    "uncertainty, margin, entropy, random, batch")  # no multi-label one offered


def _digit_rows(n=240):
    """Real vectors (scikit-learn's digits) with two properties of the true digit as labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rows = []
    for i in range(n):
        d = int(digits.target[i])
        labels = [name for name, holds in (("even", d % 2 == 0), ("big", d >= 5)) if holds]
        rows.append({"external_id": f"d{i}", "features": digits.data[i].tolist(), "labels": labels})
    return rows


def test_a_retrain_trains_one_vs_rest_scores_the_pool_and_predicts_sets(client, admin_token, make_user):
    created = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": "digit properties", "labels": ["even", "big", "unused"],
        "settings": {"task": "multi_label", "holdout_fraction": 0.25, "retrain_threshold": 1000, "queue_seed": 3}})
    project_id = created.json["id"]
    rows = _digit_rows()
    labeled, pool = rows[:160], [{k: v for k, v in r.items() if k != "labels"} for r in rows[160:]]
    assert client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                       json={"examples": labeled[:150] + pool}).status_code == 201
    # Labels arrive after the first model (a retrain on its very labels would keep it).
    assert client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                       json={"examples": labeled[150:]}).status_code == 201
    run = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).json["run_id"]
    result = client.get(f"/api/v1/runs/{run}", headers=auth(admin_token)).json
    assert result["status"] == "succeeded", result
    models = client.get(f"/api/v1/projects/{project_id}/models", headers=auth(admin_token)).json["models"]
    first, last = models[-1], models[0]  # the import's own run trained the first
    assert first["details"]["decision"] == "first model" and last["version"] == result["model_version"]
    assert last["status"] == "champion" and last["details"]["metric"] == "micro_f1"
    assert "bootstrap" in last["details"]["decision"], last["details"]["decision"]
    assert result["result"]["metrics"]["micro_f1"] > 0.7 and 0 <= result["result"]["metrics"]["subset_accuracy"] <= 1
    assert result["result"]["rescored"] == len(pool)
    # The queue serves the pool by the multi-label measure, most uncertain first.
    whys = []
    for i in range(6):  # a share of the picks is the holdout's random draw
        _, token = make_user(f"ann{i}")
        whys.append(client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json["why"])
    assert {"strategy": "min_confidence", "model_version": last["version"]} in [
        {k: w[k] for k in ("strategy", "model_version")} for w in whys], whys
    predicted = client.post(f"/api/v1/projects/{project_id}/predict", headers=auth(admin_token),
                            json={"examples": [{"features": r["features"]} for r in rows[200:240]]}).json
    sets = [p["labels"] for p in predicted["predictions"]]
    truth = [r["labels"] for r in rows[200:240]]
    assert all(set(p["probabilities"]) == {"even", "big", "unused"} for p in predicted["predictions"])
    assert sum(s == t for s, t in zip(sets, truth)) >= 28  # most sets exactly right on unseen digits
    # Suggestions carry a set; a confident model objects to a wrong set with a set.
    client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token),
                 json={"settings": {"suggestions": "show", "blind_share": 0}})
    _, token = make_user("sue")
    served = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    suggestion = served["suggestion"]
    assert isinstance(suggestion["labels"], list) and set(suggestion["probabilities"]) == {"even", "big", "unused"}
    objected = []
    for i in range(40):
        _, token = make_user(f"wrong{i}")
        lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        if "suggestion" not in lease or lease["suggestion"] is None:
            continue
        opposite = [n for n in ("even", "big") if n not in lease["suggestion"]["labels"]]
        answer = submit(client, token, project_id, lease["example"]["id"], labels=opposite).json
        if "warning" in answer:
            objected.append((answer["warning"]["suggested"], lease["suggestion"]["labels"]))
    assert objected and all(suggested == shown for suggested, shown in objected)


PROPERTIES = ["even", "big", "unused"]


@pytest.fixture
def trained(client, admin_token):
    """A multi-label project on digits whose import trained a champion: 160 labeled, the pool
    d160-d199 unlabeled; the queue follows the model alone (no holdout, random picks or diverse
    batches). Returns the project id and the rows (d200-d279 are unseen)."""
    created = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": f"digits-{uuid.uuid4().hex[:8]}", "labels": PROPERTIES,
        "settings": {"task": "multi_label", "holdout_fraction": 0, "random_share": 0, "diverse_batches": False,
                     "retrain_threshold": 1000, "queue_seed": 3}})
    project_id = created.json["id"]
    rows = _digit_rows(280)
    pool = [{k: v for k, v in r.items() if k != "labels"} for r in rows[160:200]]
    assert client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                       json={"examples": rows[:160] + pool}).status_code == 201
    models = client.get(f"/api/v1/projects/{project_id}/models", headers=auth(admin_token)).json["models"]
    assert models and models[0]["status"] == "champion", models
    return project_id, rows


def _predict(client, token, project_id, examples, **body):
    return client.post(f"/api/v1/projects/{project_id}/predict", headers=auth(token),
                       json={"examples": examples, **body})


def _min_confidence_score(probabilities):
    """modAL's MinConfidence as the queue scores it: 1 - the least sure decision's |2p - 1|."""
    return 1 - min(abs(2 * p - 1) for p in probabilities.values())


def test_predict_queues_the_uncertain_sets_with_their_score_and_next_serves_them_first(
        client, admin_token, make_user, session, trained):
    project_id, rows = trained
    unseen = [{"external_id": r["external_id"], "features": r["features"]} for r in rows[200:280]]
    plain = _predict(client, admin_token, project_id, unseen).json
    confidences = sorted({p["confidence"] for p in plain["predictions"]})
    assert len(confidences) > 10
    middle = len(confidences) // 2
    threshold = (confidences[middle - 1] + confidences[middle]) / 2  # between two predictions: no rounding ties
    unsure = {r["external_id"]: p for r, p in zip(unseen, plain["predictions"]) if p["confidence"] < threshold}
    assert 0 < len(unsure) < len(unseen)

    queued = _predict(client, admin_token, project_id, unseen, enqueue_uncertain=True, uncertain_below=threshold)
    assert queued.status_code == 200, queued.json
    assert queued.json["predictions"] == plain["predictions"] and queued.json["enqueued"] == len(unsure)
    version = queued.json["model_version"]
    stored = session.execute(select(Example).where(Example.project_id == project_id,
                                                   Example.external_id.in_([r["external_id"] for r in unseen]))).scalars().all()
    assert {e.external_id for e in stored} == set(unsure)
    for example in stored:  # as the multi-label re-scoring stores a pool example
        prediction = unsure[example.external_id]
        assert example.predicted_label == json.dumps(prediction["labels"]) and example.scored_by_version == version
        assert example.confidence == pytest.approx(prediction["confidence"], abs=1e-6)
        assert list(example.suggestion_probs) == PROPERTIES
        assert all(example.suggestion_probs[n] == pytest.approx(p, abs=1e-4) for n, p in prediction["probabilities"].items())
        assert example.priority == pytest.approx(1 + _min_confidence_score(prediction["probabilities"]), abs=1e-4)
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]["examples"] == 200 + len(unsure)

    # The queued examples come before the pool the model scored, with their set as the suggestion.
    client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token),
                 json={"settings": {"suggestions": "show", "blind_share": 0}})
    served = []
    for i in range(len(unsure) + 1):
        _, token = make_user(f"ann{i}")
        lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        served.append(lease["example"]["external_id"])
        if i < len(unsure):
            assert lease["suggestion"]["labels"] == unsure[served[-1]]["labels"]
    assert set(served[:-1]) == set(unsure) and served[-1] in {r["external_id"] for r in rows[160:200]}


def test_predict_queues_no_example_the_project_has_and_checks_rows_as_an_import(
        client, admin_token, session, trained):
    project_id, rows = trained
    features = {r["external_id"]: r["features"] for r in rows}
    known = ["d3", "d170"]  # labeled, in the pool
    body = dict(enqueue_uncertain=True, uncertain_below=1.0)
    response = _predict(client, admin_token, project_id,
                        [{"external_id": e, "features": features[e]} for e in known + ["d250"]], **body)
    assert response.status_code == 200 and response.json["enqueued"] == 1, response.json
    again = _predict(client, admin_token, project_id, [{"external_id": "d250", "features": features["d250"]}], **body)
    assert again.json["enqueued"] == 0
    count = session.scalar(select(func.count()).select_from(Example).where(Example.project_id == project_id))
    assert count == 201 and client.get(f"/api/v1/projects/{project_id}",
                                       headers=auth(admin_token)).json["counts"]["examples"] == 201
    # Rows are an import's rows of a multi-label project: "label" is refused, nothing is queued.
    refused = _predict(client, admin_token, project_id,
                       [{"external_id": "d251", "features": features["d251"], "label": "even"}], **body)
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "label"
    # The random strategy scores what it queues by the default measure, as single-label uses margin.
    assert client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token),
                        json={"settings": {"strategy": "random"}}).status_code == 200
    queued = _predict(client, admin_token, project_id, [{"external_id": "d252", "features": features["d252"]}], **body)
    assert queued.json["enqueued"] == 1
    session.rollback()
    priority = session.scalar(select(Example.priority).where(Example.project_id == project_id,
                                                             Example.external_id == "d252"))
    assert priority == pytest.approx(1 + _min_confidence_score(queued.json["predictions"][0]["probabilities"]), abs=1e-4)


def test_an_archived_multi_label_project_refuses_to_queue_predictions(client, admin_token, session, trained):
    project_id, rows = trained
    examples = [{"external_id": "d260", "features": rows[260]["features"]}]
    assert client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token),
                        json={"archived": True}).status_code == 200
    refused = _predict(client, admin_token, project_id, examples, enqueue_uncertain=True, uncertain_below=1.0)
    assert refused.status_code == 409 and "archived" in refused.json["error"]
    assert _predict(client, admin_token, project_id, examples).status_code == 200  # reading stays open
    assert session.scalar(select(Example.id).where(Example.project_id == project_id,
                                                   Example.external_id == "d260")) is None


def test_a_set_longer_than_a_label_name_is_stored_whole(client, admin_token, make_user):
    long_names = [f"{'x' * 150}-{i}" for i in range(4)]  # 600+ characters as a set
    created = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": "long names", "labels": long_names, "settings": {"task": "multi_label"}})
    project_id = created.json["id"]
    client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), json={"examples": ROWS[:1]})
    _, token = make_user("ann")
    example_id = lease(client, token, project_id)["example"]["id"]
    done = submit(client, token, project_id, example_id, labels=long_names[::-1])
    assert done.status_code == 201 and done.json["label"]["value"] == long_names


def test_a_retrain_flags_sets_with_a_wrong_decision_and_suggests_the_turned_set(client, admin_token):
    """Planted noise (a unit test of the check; the evidence is bench/simulate.py's loop)."""
    from sklearn.datasets import load_digits

    names = ["zero", "one", "six"]
    digits = load_digits()
    truth = {f"d{i}": [n for n, d in zip(names, (0, 1, 6)) if int(digits.target[i]) == d] for i in range(600)}
    rng = np.random.default_rng(0)
    planted = {f"d{i}" for i in rng.choice(600, size=60, replace=False).tolist()}
    rows = []
    for i in range(600):
        chosen = set(truth[f"d{i}"])
        if f"d{i}" in planted:  # one decision turned, as a hurried annotator would
            chosen ^= {names[int(rng.integers(3))]}
        rows.append({"external_id": f"d{i}", "features": digits.data[i].tolist(),
                     "labels": [n for n in names if n in chosen]})
    created = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": "planted", "labels": names,
        "settings": {"task": "multi_label", "holdout_fraction": 0, "retrain_threshold": 100000}})
    project_id = created.json["id"]
    assert client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                       json={"examples": rows}).status_code == 201
    runs = client.get(f"/api/v1/projects/{project_id}/runs", headers=auth(admin_token)).json["runs"]
    assert runs and all(r["status"] == "succeeded" for r in runs), runs  # the import's run judged the labels
    flags = client.get(f"/api/v1/projects/{project_id}/flags?limit=200", headers=auth(admin_token)).json["flags"]
    hits = [f for f in flags if f["external_id"] in planted]
    assert len(hits) >= 0.5 * len(planted) and len(hits) >= 0.8 * len(flags), (len(hits), len(flags))
    assert all(isinstance(f["given"], list) and f["reason"] == "model_disagrees" for f in flags)
    assert sum(f["suggested"] == truth[f["external_id"]] for f in hits) >= 0.8 * len(hits)


def test_the_data_browser_finds_a_set_by_one_of_its_labels(client, admin_token, multi):
    project_id = multi(rows=[{**ROWS[0], "labels": ["sports", "tech"]}, {**ROWS[1], "labels": ["tech"]},
                             {**ROWS[2], "labels": []}, ROWS[3]])
    def found(label):
        response = client.get(f"/api/v1/projects/{project_id}/examples?label={label}", headers=auth(admin_token))
        assert response.status_code == 200
        return sorted(e["external_id"] for e in response.json["examples"])
    assert found("tech") == ["m0", "m1"] and found("sports") == ["m0"] and found("politics") == []
    [row] = [e for e in client.get(f"/api/v1/projects/{project_id}/examples?label=sports",
                                   headers=auth(admin_token)).json["examples"]]
    assert row["labels"][0]["value"] == ["sports", "tech"]


@pytest.mark.parametrize("labels, message", [(["a", "b|c"], "'|'"), (["a", "[]"], "'[]'")])
def test_a_multi_label_label_set_must_survive_a_csv(client, admin_token, labels, message):
    refused = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": f"bad-{uuid.uuid4().hex[:6]}", "labels": labels, "settings": {"task": "multi_label"}})
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "labels"
    assert message in refused.json["errors"][0]["message"]
    single = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": f"ok-{uuid.uuid4().hex[:6]}", "labels": labels})
    assert single.status_code == 201  # a single-label project takes them
    changed = client.patch(f"/api/v1/projects/{single.json['id']}", headers=auth(admin_token),
                           json={"settings": {"task": "multi_label"}})
    assert changed.status_code == 422 and changed.json["errors"][0]["field"] == "labels"


@pytest.mark.parametrize("task", ["multi_label", "single_label"])
def test_a_project_needs_two_labels_to_choose_from(client, admin_token, task):
    refused = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": f"one-{task}", "labels": ["toxic"], "settings": {"task": task}})
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "labels"
    assert "at least two labels" in refused.json["errors"][0]["message"]
    assert client.get("/api/v1/projects", headers=auth(admin_token)).json["projects"] == []  # nothing half-made


def test_the_import_mapping_takes_a_labels_column(client, admin_token, multi):
    """The page's mapping (and the API's unknown_columns) keep a labels column as the sets."""
    project_id = multi(rows=[])
    rows = "\n".join(json.dumps(r) for r in [{"id": "a", "comment": "x", "labels": ["tech"], "extra": 1},
                                             {"id": "b", "comment": "y", "labels": []}])
    from labeling.mapping import guess_mapping
    assert guess_mapping(["id", "comment", "labels", "extra"])["labels"] == "labels"
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), data={
        "file": (io.BytesIO(rows.encode()), "rows.jsonl"), "unknown_columns": "meta"})
    assert response.status_code == 422  # id and comment are no fields without a mapping: named
    renamed = "\n".join(json.dumps(r) for r in [{"external_id": "a", "text": "x", "labels": ["tech"], "extra": 1},
                                                {"external_id": "b", "text": "y", "labels": []}])
    done = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), data={
        "file": (io.BytesIO(renamed.encode()), "rows.jsonl"), "unknown_columns": "meta"})
    assert done.status_code == 201 and done.json["labels"] == 2, done.json
    exported = {r["external_id"]: r for r in map(json.loads, export(client, admin_token, project_id,
                                                                      "format=jsonl").splitlines())}
    assert exported["a"]["labels"] == ["tech"] and exported["a"]["meta"] == {"extra": 1} and exported["b"]["labels"] == []


def test_a_multi_label_project_reads_text_beside_stored_embeddings(client, admin_token, monkeypatch):
    from active_learning import embeddings

    food = ["the pasta was", "this pizza tasted", "our dinner was", "the soup was"]
    trip = ["the flight was", "our hotel was", "the train ride was", "this beach was"]
    rows = [{"external_id": f"t{i}", "text": f"{start} {mood}",
             "labels": (["food"] if start in food else []) + (["happy"] if mood == "wonderful" else [])}
            for i, (start, mood) in enumerate((s, m) for s in food + trip for m in ("wonderful", "awful", "lovely"))]
    created = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": "text sets", "labels": ["food", "happy"],
        "settings": {"task": "multi_label", "featurizer": "tfidf_embeddings", "holdout_fraction": 0.25,
                     "retrain_threshold": 1000, "queue_seed": 1}})
    project_id = created.json["id"]
    # The first model comes with the import and encodes every row; the last rows' labels, given
    # after it, are what the retrain adds.
    unlabeled = [{k: v for k, v in r.items() if k != "labels"} for r in rows[20:]]
    assert client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                       json={"examples": rows[:20] + unlabeled}).status_code == 201
    truth = {r["external_id"]: r["labels"] for r in rows}
    for _ in unlabeled:
        served = lease(client, admin_token, project_id)["example"]
        assert submit(client, admin_token, project_id, served["id"], labels=truth[served["external_id"]]).status_code == 201
    encoded = []
    real = embeddings.SentenceEmbedder.transform
    monkeypatch.setattr(embeddings.SentenceEmbedder, "transform", lambda self, texts: encoded.append(len(texts)) or real(self, texts))
    run = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).json["run_id"]
    result = client.get(f"/api/v1/runs/{run}", headers=auth(admin_token)).json
    assert result["status"] == "succeeded", result
    latest = client.get(f"/api/v1/projects/{project_id}/models", headers=auth(admin_token)).json["models"][0]
    # Judged against the champion on the holdout, on embeddings read from the store, not encoded again.
    assert latest["details"]["featurizer"] == "tfidf_embeddings" and "bootstrap" in latest["details"]["decision"]
    assert encoded == []
