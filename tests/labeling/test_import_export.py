"""Import validation (all or nothing, by line and field) and streamed export."""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq

from tests.conftest import auth


def upload(client, token, project_id, name, data: bytes):
    return client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(token),
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def count_examples(client, token, project_id):
    return client.get(f"/api/v1/projects/{project_id}", headers=auth(token)).json["counts"]["examples"]


def test_bad_files_are_refused_with_line_and_field(client, admin_token, make_project):
    project_id = make_project(n=0)
    cases = [
        ("wrong-encoding.jsonl", '{"external_id": "1", "text": "caf\xe9"}\n'.encode("latin-1"), 1, None),
        ("truncated.jsonl", b'{"external_id": "1", "text": "ok"}\n{"external_id": "2", "te', 2, None),
        ("no-id.csv", b"text,label\nhello,pos\n", 1, "external_id"),
        ("bad-label.jsonl", b'{"external_id": "1", "text": "a", "label": "meh"}\n', 1, "label"),
        ("empty.csv", b"", 1, None),
        ("empty.jsonl", b"\n\n", 1, None),
        ("huge.jsonl", b'{"external_id": "1", "text": "' + b"x" * 2_000_000 + b'"}\n', 1, "text"),
    ]
    for name, data, line, field in cases:
        response = upload(client, admin_token, project_id, name, data)
        assert response.status_code == 422, name
        first = response.json["errors"][0]
        assert first["line"] == line, (name, first)
        if field:
            assert first["field"] == field, (name, first)
    assert count_examples(client, admin_token, project_id) == 0


def test_one_bad_row_imports_nothing(client, admin_token, make_project):
    project_id = make_project(n=0)
    rows = [{"external_id": str(i), "text": "fine"} for i in range(5000)] + [{"external_id": "x"}]
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), json={"examples": rows})
    assert response.status_code == 422
    assert response.json["errors"] == [{"field": "text", "line": 5001, "message": "each example needs text, image or features"}]
    assert count_examples(client, admin_token, project_id) == 0


def test_awkward_but_valid_csv(client, admin_token, make_project):
    project_id = make_project(n=0)
    data = "\ufeffexternal_id,text,label\r\n1,\"line one\r\nline two\",pos\r\n2,\"naïve café, «quoted»\",neg\r\n".encode()
    response = upload(client, admin_token, project_id, "x.csv", data)
    assert response.status_code == 201, response.json
    assert response.json == {"imported": 2, "duplicates": 0, "labels": 2}
    exported = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl", headers=auth(admin_token))
    rows = {r["external_id"]: r for r in map(json.loads, exported.data.decode().splitlines())}
    assert rows["1"]["text"] == "line one\r\nline two" and rows["2"]["text"] == "naïve café, «quoted»"


def test_duplicates_are_reported_and_skipped(client, admin_token, make_project):
    project_id = make_project(n=3)
    rows = [{"external_id": "e1", "text": "again"}, {"external_id": "new", "text": "n"}, {"external_id": "new", "text": "n2"}]
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), json={"examples": rows})
    assert response.json == {"imported": 1, "duplicates": 2, "labels": 0}


def test_export_formats_and_snapshots(client, admin_token, make_user, make_project):
    project_id = make_project(n=0, examples=[{"external_id": "a", "text": "x", "label": "pos", "meta": {"k": 1}},
                                            {"external_id": "b", "features": [1.0, 2.5], "label": "neg"},
                                            {"external_id": "c", "text": "z"}])
    snap = client.post(f"/api/v1/projects/{project_id}/snapshots", headers=auth(admin_token))
    assert snap.status_code == 201 and snap.json == {"snapshot": 1, "labels": 2}
    _, token = make_user("ann")
    lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                json={"example_id": lease["example"]["id"], "label": "neg"})
    base = f"/api/v1/projects/{project_id}/export"
    live = client.get(base + "?format=csv", headers=auth(admin_token))
    assert live.status_code == 200 and live.mimetype == "text/csv"
    assert live.data.decode().splitlines()[0] == "external_id,text,image,features,meta,label,n_annotations,agreement,flag_status"
    assert len(live.data.decode().strip().splitlines()) == 4
    frozen = client.get(base + "?format=parquet&snapshot=1", headers=auth(admin_token))
    table = pq.read_table(pa.BufferReader(frozen.data))
    assert sorted(table.column("external_id").to_pylist()) == ["a", "b"]
    assert dict(zip(table.column("external_id").to_pylist(), table.column("features").to_pylist()))["b"] == [1.0, 2.5]
    events = client.get(base + "?format=jsonl&annotations=all", headers=auth(admin_token))
    rows = [json.loads(l) for l in events.data.decode().splitlines()]
    assert [r["source"] for r in rows] == ["import", "import", "annotator"] and rows[2]["annotator"] == "ann"
    bad = client.get(base + "?format=xml", headers=auth(admin_token))
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "format"
    assert client.get(base + "?snapshot=9", headers=auth(admin_token)).status_code == 404
