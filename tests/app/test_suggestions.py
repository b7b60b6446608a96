"""Suggestions (docs/api.md): the settings, /next's suggestion, the blind share, what a label
records, the re-scoring's stored probabilities and the suggested-vs-blind comparison."""

from __future__ import annotations

import re
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, update

from labeling.models import Example, Label
from labeling.suggestions import is_blind
from tests.conftest import auth

PROBS = {"pos": 0.8, "neg": 0.2}


def _score_all(app, project_id, label="pos", probs=PROBS, **where):
    """As if the champion had scored the pool: every example predicted ``label``."""
    with app.extensions["hitl_sessionmaker"]() as s:
        s.execute(update(Example).where(Example.project_id == project_id, *[getattr(Example, k) == v for k, v in where.items()])
                  .values(predicted_label=label, confidence=max(probs.values()), suggestion_probs=probs,
                          scored_by_version=1))
        s.commit()


def _blind_and_not(project_id, ids, share):
    blind = [i for i in ids if is_blind(project_id, i, share)]
    return blind, [i for i in ids if i not in blind]


@pytest.mark.parametrize("settings, field", [
    ({"suggestions": "always"}, "settings.suggestions"), ({"suggestions": True}, "settings.suggestions"),
    ({"blind_share": 1.5}, "settings.blind_share"), ({"blind_share": "0.1"}, "settings.blind_share"),
    ({"blind_share": -0.1}, "settings.blind_share"),
])
def test_bad_suggestion_settings_are_a_422_naming_the_field(client, admin_token, make_project, settings, field):
    response = client.post("/api/v1/projects", json={"name": "s", "labels": ["a", "b"], "settings": settings},
                           headers=auth(admin_token))
    assert response.status_code == 422 and [e["field"] for e in response.json["errors"]] == [field]
    project_id = make_project(n=0)
    response = client.patch(f"/api/v1/projects/{project_id}", json={"settings": settings}, headers=auth(admin_token))
    assert response.status_code == 422 and [e["field"] for e in response.json["errors"]] == [field]


def test_defaults_are_off_and_a_tenth_blind(client, admin_token, make_project):
    project_id = make_project(n=0)
    settings = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["settings"]
    assert settings["suggestions"] == "off" and settings["blind_share"] == 0.1


def test_next_has_no_suggestion_key_while_suggestions_are_off(app, client, make_user, make_project):
    project_id = make_project(n=3)
    _score_all(app, project_id)
    _, token = make_user("ann")
    body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert "suggestion" not in body


@pytest.mark.parametrize("mode", ["show", "preselect"])
def test_next_suggests_the_stored_prediction_and_the_label_records_what_was_shown(app, client, make_user, make_project,
                                                                                mode):
    project_id = make_project(n=30, settings={"suggestions": mode, "blind_share": 0.3, "holdout_fraction": 0})
    _score_all(app, project_id, "neg", {"neg": 0.7, "pos": 0.3})
    _, token = make_user("ann")
    seen = {"blind": 0, "shown": 0}
    for _ in range(30):
        body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        example_id = body["example"]["id"]
        blind = is_blind(project_id, example_id, 0.3)
        if blind:
            assert body["suggestion"] is None
        else:
            assert body["suggestion"] == {"label": "neg", "probabilities": {"neg": 0.7, "pos": 0.3}}
        seen["blind" if blind else "shown"] += 1
        label = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
            "example_id": example_id, "label": "pos", "lease_id": body["lease"]["id"], "duration_ms": 1000}).json["label"]
        assert (label["suggestion_mode"], label["suggested"]) == (("blind", None) if blind else (mode, "neg"))
    assert seen["blind"] and seen["shown"]
    with app.extensions["hitl_sessionmaker"]() as s:
        rows = s.execute(select(Label.suggestion_mode, Label.suggested)).all()
    assert sorted(set(rows)) == sorted({("blind", None), (mode, "neg")})


def test_an_unscored_example_has_a_null_suggestion_and_records_unscored(client, make_user, make_project):
    project_id = make_project(n=5, settings={"suggestions": "show", "blind_share": 0})
    _, token = make_user("ann")
    body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert body["suggestion"] is None
    label = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": body["example"]["id"], "label": "pos"}).json["label"]
    assert (label["suggestion_mode"], label["suggested"]) == ("unscored", None)


def test_an_example_scored_before_probabilities_were_stored_suggests_its_label_and_confidence(
        app, client, make_user, make_project):
    project_id = make_project(n=1, settings={"suggestions": "show", "blind_share": 0})
    with app.extensions["hitl_sessionmaker"]() as s:
        s.execute(update(Example).values(predicted_label="pos", confidence=0.91, scored_by_version=1))
        s.commit()
    _, token = make_user("ann")
    body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert body["suggestion"] == {"label": "pos", "probabilities": {"pos": 0.91}}


def test_labels_record_nothing_while_suggestions_are_off(app, client, make_user, make_project):
    project_id = make_project(n=1)
    _score_all(app, project_id)
    _, token = make_user("ann")
    body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    label = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": body["example"]["id"], "label": "pos", "suggestion_mode": "blind"}).json["label"]
    assert (label["suggestion_mode"], label["suggested"]) == (None, None)


def test_the_blind_share_is_honoured_deterministically():
    ids = range(1, 20001)
    for share in (0.0, 0.1, 0.5, 1.0):
        blind = sum(is_blind(7, i, share) for i in ids)
        assert abs(blind / len(ids) - share) < 0.015
    assert [is_blind(7, i, 0.1) for i in range(1, 200)] == [is_blind(7, i, 0.1) for i in range(1, 200)]
    assert [is_blind(7, i, 0.1) for i in ids] != [is_blind(8, i, 0.1) for i in ids]  # another project, another draw
    assert all(is_blind(7, i, 0.2) for i in ids if is_blind(7, i, 0.1))  # raising the share only adds blind ones


def test_the_same_example_is_blind_for_every_annotator(app, client, make_user, make_project):
    project_id = make_project(n=12, settings={"suggestions": "show", "blind_share": 0.5, "overlap": 2,
                                              "holdout_fraction": 0})
    _score_all(app, project_id)
    answers = {}
    for name in ("one", "two"):
        _, token = make_user(name)
        for _ in range(12):
            body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
            answers.setdefault(body["example"]["id"], set()).add(body["suggestion"] is None)
            client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
                "example_id": body["example"]["id"], "label": "pos"})
    assert len(answers) == 12 and all(len(v) == 1 for v in answers.values())
    assert {next(iter(v)) for v in answers.values()} == {True, False}


def test_the_rescoring_stores_the_top_three_probabilities(app, session):
    from active_learning.models import make_model
    from labeling import projects
    from labeling.db import utcnow
    from labeling.examples import import_examples, json_rows
    from labeling.rescoring import rescore_pool

    rng = np.random.default_rng(0)
    names = np.array(["a", "b", "c", "d"])
    X = rng.normal(size=(200, 4)).astype(np.float32)
    y = names[np.argmax(X, axis=1)]
    project = projects.create_project(session, "top", list(names), {}, now=utcnow())
    import_examples(session, project, json_rows([{"external_id": str(i), "features": X[i].tolist()} for i in range(200)]),
                    now=utcnow(), random_state=0)
    session.commit()
    model = make_model("features").fit(X, y)
    assert rescore_pool(session, project, model, 1, kind="vector") == 200
    rows = session.execute(select(Example.external_id, Example.predicted_label, Example.confidence,
                                  Example.suggestion_probs)).all()
    for external_id, predicted, confidence, probs in rows:
        full = model.predict_proba(X[int(external_id)][None])[0]
        assert list(probs) == [str(c) for c in model.classes_[np.argsort(-full)[:3]]]
        assert list(probs)[0] == predicted and probs[predicted] == pytest.approx(confidence, abs=1e-4)
        assert list(probs.values()) == sorted(probs.values(), reverse=True)


def _label_events(app, project_id, rows):
    """Label events as the labeling page would have written them: (mode, suggested, value, seconds)."""
    from labeling import users
    from labeling.db import utcnow

    now = utcnow()
    with app.extensions["hitl_sessionmaker"]() as s:
        ann = users.create_user(s, "ann", "annotator", password=None, now=now)
        examples = s.scalars(select(Example.id).where(Example.project_id == project_id).order_by(Example.id)).all()
        for example_id, (mode, suggested, value, seconds) in zip(examples, rows):
            s.add(Label(project_id=project_id, example_id=example_id, annotator_id=ann.id, value=value,
                        created_at=now + timedelta(seconds=example_id), duration_ms=seconds and seconds * 1000,
                        source="annotator", suggestion_mode=mode, suggested=suggested))
        s.commit()
        return examples


def test_the_comparison_of_suggested_and_blind_labels_on_known_data(app, make_project):
    from labeling.suggestion_effect import suggestion_effect

    project_id = make_project(n=10, settings={"suggestions": "preselect"})
    examples = _label_events(app, project_id, [
        ("preselect", "pos", "pos", 2), ("preselect", "pos", "pos", 4), ("preselect", "neg", "neg", 3),
        ("preselect", "pos", "neg", None), ("blind", None, "pos", 5), ("blind", None, "neg", 9),
        ("blind", None, "pos", 7), ("unscored", None, "pos", 1), (None, None, "neg", 1)])
    with app.extensions["hitl_sessionmaker"]() as s:
        # A reviewer overturned the 2nd suggested label and the 3rd blind one (replacing events);
        # a retrain's consensus agrees with the 1st blind label.
        for example_id, value in ((examples[1], "neg"), (examples[6], "neg")):
            old = s.scalar(select(Label).where(Label.example_id == example_id))
            s.add(Label(project_id=project_id, example_id=example_id, annotator_id=None, value=value,
                        created_at=old.created_at, replaces_id=old.id, source="review"))
        s.execute(update(Example).where(Example.id == examples[4]).values(gold_label="pos", gold_n=1))
        s.commit()
        effect = suggestion_effect(s, project_id, min_blind=3)
        assert suggestion_effect(s, project_id).enough is False  # too few for the default
    assert (effect.suggested.labels, effect.suggested.agreeing, effect.suggested.agreement) == (4, 3, 0.75)
    assert (effect.blind.labels, effect.blind.agreeing, effect.blind.agreement) == (3, 2, 0.6667)
    assert (effect.suggested.timed, effect.suggested.median_seconds) == (3, 3.0)
    assert (effect.blind.timed, effect.blind.median_seconds) == (3, 7.0)
    assert effect.accepted == 0.75 and effect.enough


def test_no_comparison_without_labels_given_with_suggestions_on(app, session, make_project):
    from labeling.suggestion_effect import suggestion_effect

    project_id = make_project(n=3)
    _label_events(app, project_id, [(None, None, "pos", 1)])
    assert suggestion_effect(session, project_id) is None


def test_the_dashboard_compares_or_says_there_are_too_few_blind_labels(app, client, admin_token, make_project,
                                                                         make_user):
    project_id = make_project(n=50, settings={"suggestions": "show"})
    _label_events(app, project_id, [("show", "pos", "pos", 2)] * 25 + [("blind", None, "pos", 4)] * 5)
    make_user("rev", "reviewer")
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"name": "rev", "password": "correct horse", "csrf_token": token})
    page = client.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    assert "Too few labels to compare yet: 5 blind and" in page and 'data-testid="suggestion-effect-table"' not in page
    _label_events_more(app, project_id, 30, [("blind", None, "neg", 6)] * 20)
    page = client.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    assert 'data-testid="suggestion-effect-table"' in page and "Too few" not in page


def _label_events_more(app, project_id, skip, rows):
    from labeling.db import utcnow
    from labeling.models import User

    with app.extensions["hitl_sessionmaker"]() as s:
        ann = s.scalar(select(User).where(User.name == "ann"))
        examples = s.scalars(select(Example.id).where(Example.project_id == project_id).order_by(Example.id)).all()[skip:]
        for example_id, (mode, suggested, value, seconds) in zip(examples, rows):
            s.add(Label(project_id=project_id, example_id=example_id, annotator_id=ann.id, value=value,
                        created_at=utcnow(), duration_ms=seconds * 1000, source="annotator", suggestion_mode=mode,
                        suggested=suggested))
        s.commit()


@pytest.mark.parametrize("mode", ["show", "preselect"])
def test_the_label_records_the_suggestion_served_not_one_rescored_before_the_submit(app, client, make_user,
                                                                                    make_project, mode):
    project_id = make_project(n=2, settings={"suggestions": mode, "blind_share": 0, "holdout_fraction": 0})
    _score_all(app, project_id, "neg", {"neg": 0.7, "pos": 0.3})
    _, token = make_user("ann")
    body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert body["suggestion"]["label"] == "neg"
    _score_all(app, project_id, "pos", {"pos": 0.9, "neg": 0.1})  # a retrain re-scores the pool meanwhile
    label = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": body["example"]["id"], "label": "pos", "lease_id": body["lease"]["id"]}).json["label"]
    assert (label["suggestion_mode"], label["suggested"]) == (mode, "neg")  # what the page showed

    second = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert second["suggestion"] == {"label": "pos", "probabilities": {"pos": 0.9, "neg": 0.1}}
    client.patch(f"/api/v1/projects/{project_id}", headers=auth(make_user("boss", "admin")[1]),
                 json={"settings": {"suggestions": "off"}})  # turned off after it was served
    label = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": second["example"]["id"], "label": "pos"}).json["label"]
    assert (label["suggestion_mode"], label["suggested"]) == (mode, "pos")


def test_a_reload_of_the_held_example_records_what_the_reload_showed(app, client, make_user, make_project):
    project_id = make_project(n=1, settings={"suggestions": "show", "blind_share": 0})
    _, token = make_user("ann")
    first = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert first["suggestion"] is None  # unscored when served
    _score_all(app, project_id, "neg", {"neg": 0.7, "pos": 0.3})
    again = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert again["example"]["id"] == first["example"]["id"] and again["suggestion"]["label"] == "neg"
    label = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": first["example"]["id"], "label": "pos"}).json["label"]
    assert (label["suggestion_mode"], label["suggested"]) == ("show", "neg")


def _events(client, token, project_id):
    """The events export in JSONL, CSV and Parquet, each as a list of row dicts."""
    import csv
    import io
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    url = f"/api/v1/projects/{project_id}/export?annotations=all&format="
    jsonl = [json.loads(line) for line in client.get(url + "jsonl", headers=auth(token)).data.decode().splitlines()]
    rows_csv = list(csv.DictReader(io.StringIO(client.get(url + "csv", headers=auth(token)).data.decode())))
    table = pq.read_table(pa.BufferReader(client.get(url + "parquet", headers=auth(token)).data))
    return jsonl, rows_csv, table


def test_the_events_export_carries_the_suggestion_each_label_was_given_under(app, client, admin_token, make_user,
                                                                             make_project):
    project_id = make_project(n=0, settings={"suggestions": "show", "blind_share": 0.5, "holdout_fraction": 0},
                              examples=[{"external_id": "imported", "text": "x", "label": "pos"}]
                              + [{"external_id": f"e{i}", "text": f"text {i}"} for i in range(12)])
    _score_all(app, project_id, "neg", {"neg": 0.7, "pos": 0.3})
    _, token = make_user("ann")
    recorded = {}
    for i in range(11):
        if i == 10:
            client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"settings": {"suggestions": "off"}})
        body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        label = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
            "example_id": body["example"]["id"], "label": "pos"}).json["label"]
        recorded[body["example"]["external_id"]] = (label["suggestion_mode"] or "off", label["suggested"])
    assert {m for m, _ in recorded.values()} == {"blind", "show", "off"}
    expected = {"imported": (None, None), **recorded}
    jsonl, rows_csv, table = _events(client, admin_token, project_id)
    assert {r["external_id"]: (r["suggestion_mode"], r["suggested"]) for r in jsonl} == expected
    assert {r["external_id"]: (r["suggestion_mode"] or None, r["suggested"] or None) for r in rows_csv} == expected
    assert list(rows_csv[0])[-2:] == ["suggestion_mode", "suggested"]
    parquet = table.to_pylist()
    assert {r["external_id"]: (r["suggestion_mode"], r["suggested"]) for r in parquet} == expected


def test_a_multi_label_events_export_carries_the_suggested_set(app, client, admin_token, make_user, make_project):
    created = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": "tags", "labels": ["a", "b", "c"],
        "settings": {"task": "multi_label", "suggestions": "preselect", "blind_share": 0, "holdout_fraction": 0}})
    project_id = created.json["id"]
    client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                json={"examples": [{"external_id": "x", "text": "one"}, {"external_id": "y", "text": "two"}]})
    _score_all(app, project_id, '["a", "c"]', {"a": 0.9, "c": 0.8, "b": 0.1}, external_id="x")
    _score_all(app, project_id, "[]", {"a": 0.1, "b": 0.1, "c": 0.1}, external_id="y")
    _, token = make_user("ann")
    for _ in range(2):
        body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        assert client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
            "example_id": body["example"]["id"], "labels": ["b"]}).status_code == 201
    expected = {"x": ("preselect", ["a", "c"]), "y": ("preselect", [])}
    jsonl, rows_csv, table = _events(client, admin_token, project_id)
    assert {r["external_id"]: (r["suggestion_mode"], r["suggested"]) for r in jsonl} == expected
    assert {r["external_id"]: (r["suggestion_mode"], r["suggested"]) for r in rows_csv} == {
        "x": ("preselect", "a|c"), "y": ("preselect", "[]")}  # joined like the labels column
    assert {r["external_id"]: (r["suggestion_mode"], r["suggested"]) for r in table.to_pylist()} == expected
    assert str(table.schema.field("suggested").type) == "list<element: string>"
