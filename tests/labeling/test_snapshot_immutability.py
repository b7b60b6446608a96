"""Snapshots are immutable: an export of snapshot n is the same bytes after any later import
(updates of duplicates included), relabel, undo, flag resolution or retrain consensus."""

from __future__ import annotations

import json

from sqlalchemy import select, update

from labeling.db import utcnow
from labeling.models import Example, LabelFlag, Snapshot
from labeling.snapshots import store_golds
from tests.conftest import auth

ROWS = [{"external_id": f"r{i}", "text": f"first text {i}", "meta": {"v": 1}, "features": [float(i), 1.0]}
        for i in range(6)]
EXPORTS = [f"format={fmt}&annotations={kind}{extra}" for fmt in ("jsonl", "csv", "parquet")
           for kind in ("gold", "all") for extra in ("", "&include_unlabeled=true")]


def export(client, token, project_id, query):
    response = client.get(f"/api/v1/projects/{project_id}/export?{query}", headers=auth(token))
    assert response.status_code == 200, response.data[:300]
    return response.data


def every_export(client, token, project_id, snapshot):
    return {query: export(client, token, project_id, f"{query}&snapshot={snapshot}") for query in EXPORTS}


def label_next(client, project_id, token, value):
    lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                           json={"example_id": lease["example"]["id"], "label": value})
    assert response.status_code == 201, response.json
    return response.json


def import_rows(client, token, project_id, rows, on_duplicate="skip"):
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(token),
                           json={"examples": rows, "on_duplicate": on_duplicate})
    assert response.status_code == 201, response.json
    return response.json


def snapshot(client, token, project_id):
    response = client.post(f"/api/v1/projects/{project_id}/snapshots", headers=auth(token))
    assert response.status_code == 201
    return response.json["snapshot"]


def gold_texts(jsonl: bytes) -> dict[str, tuple]:
    return {r["external_id"]: (r["text"], r["meta"], r["features"], r["label"], r["flag_status"])
            for r in map(json.loads, jsonl.decode().splitlines())}


def test_a_snapshot_exports_the_same_bytes_after_updates_relabels_undos_and_new_rows(
        app, client, admin_token, make_user, make_project, session):
    project_id = make_project(examples=ROWS, settings={"holdout_fraction": 0})
    _, token = make_user("ann")
    first = label_next(client, project_id, token, "pos")
    second = label_next(client, project_id, token, "neg")
    label_next(client, project_id, token, "pos")
    # A flag open when the snapshot is taken: the relabel below closes it.
    s = app.extensions["hitl_sessionmaker"]()
    s.add(LabelFlag(project_id=project_id, label_id=second["label"]["id"], example_id=second["label"]["example_id"],
                    given="neg", suggested="pos", score=0.9, reason="model_disagrees", status="open",
                    created_at=utcnow()))
    s.commit()
    s.close()
    n = snapshot(client, token=admin_token, project_id=project_id)
    before = every_export(client, admin_token, project_id, n)

    # Every kind of later change: a duplicate's text, meta and features replaced (twice, one a
    # labeled example), new examples with labels, a relabel, an undo.
    first_ext = session.scalar(select(Example.external_id).where(Example.id == first["label"]["example_id"]))
    changed = [{**row, "text": "REPLACED", "meta": {"v": 2}, "features": [9.0, 9.0]} for row in ROWS]
    assert import_rows(client, admin_token, project_id, changed, on_duplicate="update")["updated"] == len(ROWS)
    import_rows(client, admin_token, project_id, [{**r, "text": "again"} for r in changed], on_duplicate="update")
    import_rows(client, admin_token, project_id, [{"external_id": "late", "text": "late", "features": [0.0, 0.0],
                                                   "label": "neg"}])
    relabel = client.post(f"/api/v1/examples/{second['label']['example_id']}/relabel", headers=auth(admin_token),
                          json={"label": "pos"})
    assert relabel.status_code == 201, relabel.json
    assert client.post(f"/api/v1/labels/{first['label']['id']}/undo", headers=auth(token)).status_code == 200

    live = gold_texts(export(client, admin_token, project_id, "format=jsonl&include_unlabeled=true"))
    assert live[first_ext][0] == "again" and live[first_ext][3] is None and "late" in live  # the changes happened
    assert every_export(client, admin_token, project_id, n) == before
    frozen = gold_texts(before["format=jsonl&annotations=gold"])
    assert frozen[first_ext][:4] == (f"first text {first_ext[1:]}", {"v": 1}, [float(first_ext[1:]), 1.0], "pos")
    assert frozen[session.scalar(select(Example.external_id).where(Example.id == second["label"]["example_id"]))][3:] \
        == ("neg", "open")


def test_each_snapshot_keeps_the_content_it_saw(client, admin_token, make_user, make_project):
    project_id = make_project(examples=ROWS[:1], settings={"holdout_fraction": 0})
    _, token = make_user("ann")
    label_next(client, project_id, token, "pos")
    numbers = []
    for text in ("second", "third", "fourth"):
        numbers.append(snapshot(client, admin_token, project_id))
        import_rows(client, admin_token, project_id, [{**ROWS[0], "text": text}], on_duplicate="update")
    seen = [gold_texts(export(client, admin_token, project_id, f"format=jsonl&snapshot={n}"))["r0"][0] for n in numbers]
    assert seen == ["first text 0", "second", "third"]
    assert gold_texts(export(client, admin_token, project_id, "format=jsonl"))["r0"][0] == "fourth"


def test_a_later_consensus_does_not_change_an_earlier_snapshot(app, client, admin_token, make_user, make_project):
    project_id = make_project(examples=ROWS[:1], settings={"holdout_fraction": 0, "overlap": 3})
    votes = ["pos", "neg", "neg"]
    for i, value in enumerate(votes):
        _, token = make_user(f"ann{i}")
        label_next(client, project_id, token, value)
    n = snapshot(client, admin_token, project_id)
    s = app.extensions["hitl_sessionmaker"]()
    taken = s.scalars(select(Snapshot).where(Snapshot.project_id == project_id, Snapshot.number == n)).one()
    example = s.scalar(select(Example.id).where(Example.project_id == project_id))
    store_golds(s, taken, [(example, "pos", 3)])  # the retrain of snapshot n sided with the better annotator
    s.execute(update(Example).where(Example.id == example).values(gold_label="pos", gold_n=3))
    s.commit()
    assert gold_texts(export(client, admin_token, project_id, f"format=jsonl&snapshot={n}"))["r0"][3] == "pos"
    before = export(client, admin_token, project_id, f"format=jsonl&snapshot={n}")
    # A later retrain sides with the majority: the live export follows it, snapshot n does not.
    s.execute(update(Example).where(Example.id == example).values(gold_label="neg", gold_n=3))
    s.commit()
    s.close()
    assert gold_texts(export(client, admin_token, project_id, "format=jsonl"))["r0"][3] == "neg"
    assert export(client, admin_token, project_id, f"format=jsonl&snapshot={n}") == before
