"""Import validation (all or nothing, by line and field) and streamed export."""

import io
import json

from sqlalchemy import func, select

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
        ("empty-id.csv", b"external_id,text\n,hello\n", 2, "external_id"),
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


def test_a_file_without_ids_gets_ids_from_content_and_a_second_import_skips_it(client, admin_token, make_project):
    project_id = make_project(n=0)
    data = b"text,label\nhello,pos\nworld,neg\nhello,neg\n"
    first = upload(client, admin_token, project_id, "no-id.csv", data)
    assert first.status_code == 201, first.json
    assert (first.json["imported"], first.json["duplicates"], first.json["labels"]) == (2, 1, 2)
    again = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                        json={"examples": [{"text": "world"}, {"text": "new one"}]})
    assert (again.json["imported"], again.json["duplicates"]) == (1, 1)
    exported = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl&include_unlabeled=true",
                          headers=auth(admin_token)).data.decode().splitlines()
    rows = {r["text"]: r for r in map(json.loads, exported)}
    assert rows["hello"]["label"] == "pos" and all(r["external_id"].startswith("sha256:") for r in rows.values())
    assert len({r["external_id"] for r in rows.values()}) == 3


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
    assert response.json == {"imported": 2, "duplicates": 0, "labels": 2, "updated": 0, "import_id": response.json["import_id"]}
    exported = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl", headers=auth(admin_token))
    rows = {r["external_id"]: r for r in map(json.loads, exported.data.decode().splitlines())}
    assert rows["1"]["text"] == "line one\r\nline two" and rows["2"]["text"] == "naïve café, «quoted»"


def test_duplicates_are_reported_and_skipped(client, admin_token, make_project):
    project_id = make_project(n=3)
    rows = [{"external_id": "e1", "text": "again"}, {"external_id": "new", "text": "n"}, {"external_id": "new", "text": "n2"}]
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), json={"examples": rows})
    assert response.json == {"imported": 1, "duplicates": 2, "labels": 0, "updated": 0, "import_id": response.json["import_id"]}


def test_a_repeated_id_in_one_file_is_a_duplicate_and_its_label_is_not_imported(client, admin_token, make_project):
    project_id = make_project(n=0)
    data = b"external_id,text,label\n1,hello,pos\n1,dup id,neg\n2,other,neg\n"
    response = upload(client, admin_token, project_id, "dup.csv", data)
    assert response.json == {"imported": 2, "duplicates": 1, "labels": 2, "updated": 0, "import_id": response.json["import_id"]}
    exported = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl", headers=auth(admin_token))
    rows = {r["external_id"]: r for r in map(json.loads, exported.data.decode().splitlines())}
    assert (rows["1"]["text"], rows["1"]["label"], rows["1"]["n_annotations"]) == ("hello", "pos", 1)


def test_duplicates_are_updated_when_asked(client, admin_token, make_project):
    project_id = make_project(n=3)
    rows = [{"external_id": "e1", "text": "rewritten", "meta": {"v": 2}, "label": "pos"}, {"external_id": "new", "text": "n"}]
    bad = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                      json={"examples": rows, "on_duplicate": "replace"})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "on_duplicate"
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                           json={"examples": rows, "on_duplicate": "update"})
    assert response.json == {"imported": 1, "duplicates": 1, "labels": 0, "updated": 1, "import_id": response.json["import_id"]}
    exported = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl&include_unlabeled=true",
                          headers=auth(admin_token)).data.decode().splitlines()
    by_id = {r["external_id"]: r for r in map(json.loads, exported)}
    assert by_id["e1"]["text"] == "rewritten" and by_id["e1"]["meta"] == {"v": 2} and by_id["e1"]["label"] is None
    assert by_id["e2"]["text"] == "example number 2" and len(by_id) == 4


def test_a_csv_byte_that_is_not_utf8_is_reported_on_its_own_line(client, admin_token, make_project):
    project_id = make_project(n=0)
    data = b"external_id,text,label\r\n1,ok,pos\r\n2,caf\xe9,pos\r\n3,fine,neg\r\n4,na\xefve,neg\r\n"
    response = upload(client, admin_token, project_id, "latin1.csv", data)
    assert response.status_code == 422
    assert [(e["line"], e["message"]) for e in response.json["errors"]] == [
        (3, "not UTF-8 text (byte 0xE9 in column 2)"), (5, "not UTF-8 text (byte 0xEF in column 2)")]
    assert count_examples(client, admin_token, project_id) == 0


def test_a_csv_without_a_text_column_is_one_problem_on_its_header(client, admin_token, make_project):
    project_id = make_project(n=0)
    response = upload(client, admin_token, project_id, "body.csv", b"id,body,label\n1,hello,pos\n2,there,neg\n")
    assert response.status_code == 422
    assert response.json["errors"] == [{"field": "text", "line": 1,
                                        "message": "no text, image or features column (the columns are id, body, label)"}]


def test_import_options_in_the_query_string_count_too(client, admin_token, make_project):
    project_id = make_project(n=3)
    url = f"/api/v1/projects/{project_id}/examples"
    rows = {"examples": [{"external_id": "e1", "text": "rewritten"}]}
    bad = client.post(url + "?on_duplicate=replace", headers=auth(admin_token), json=rows)
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "on_duplicate"
    response = client.post(url + "?on_duplicate=update", headers=auth(admin_token), json=rows)
    assert (response.json["duplicates"], response.json["updated"]) == (1, 1)
    csv = b"external_id,text\ne1,from a file\n"
    response = client.post(url + "?on_duplicate=update", headers=auth(admin_token),
                           data={"file": (io.BytesIO(csv), "again.csv")}, content_type="multipart/form-data")
    assert response.json["updated"] == 1


def test_an_examples_field_that_is_no_list_is_one_error_in_the_usual_shape(client, admin_token, make_project):
    project_id = make_project(n=0)
    for examples, said in (({"a": 1}, "examples must be a list"), ([], "examples is empty")):
        response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                               json={"examples": examples})
        assert response.status_code == 422 and response.json["error"] == said
        assert response.json["errors"] == [{"field": "examples", "message": said}]


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
    assert live.status_code == 200 and live.headers["Content-Type"] == "text/csv; charset=utf-8"  # once, not twice
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


def test_the_kept_example_count_follows_imports_and_predict_enqueues(client, admin_token, make_project, session):
    from labeling.models import Example, Project

    project_id = make_project(labels=("a", "b"), examples=[
        {"external_id": str(i), "features": [float(i % 2), float(i)], "label": "ab"[i % 2] if i < 20 else None}
        for i in range(50)])
    client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                json={"examples": [{"external_id": "1", "features": [1.0, 1.0]}, {"external_id": "new", "features": [0.0, 2.0]}]})
    response = client.post(f"/api/v1/projects/{project_id}/predict", headers=auth(admin_token), json={
        "examples": [{"external_id": f"p{i}", "features": [0.5, float(i)]} for i in range(5)], "enqueue_uncertain": True,
        "uncertain_below": 1.0})
    assert response.status_code == 200, response.json
    session.rollback()
    actual = session.scalar(select(func.count()).select_from(Example).where(Example.project_id == project_id))
    assert actual == 56  # 50 + "new" + 5 enqueued ("1" was a duplicate)
    assert session.get(Project, project_id).n_examples == actual
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]["examples"] == actual


def _export(client, token, project_id, query):
    response = client.get(f"/api/v1/projects/{project_id}/export?{query}", headers=auth(token))
    assert response.status_code == 200, response.data[:300]
    return response.data


def _gold(jsonl: bytes) -> dict:
    return {r["external_id"]: (r.get("text"), r.get("features"), r.get("meta"), r["label"])
            for r in map(json.loads, jsonl.decode().splitlines())}


def test_round_trip_and_snapshots_through_export_and_reimport(client, admin_token, make_user, make_project, tmp_path):
    import datasets

    source = [{"external_id": f"t{i}", "text": f"text «{i}»\nsecond line", "meta": {"i": i},
               **({"label": "pos"} if i >= 6 else {})} for i in range(9)]
    project_id = make_project(n=0, examples=source)
    _, token = make_user("ann")

    def label(n):
        for _ in range(n):
            lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
            client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                        json={"example_id": lease["example"]["id"], "label": "neg"})

    label(2)
    snapshot = client.post(f"/api/v1/projects/{project_id}/snapshots", headers=auth(admin_token)).json["snapshot"]
    live_before = _gold(_export(client, admin_token, project_id, "format=jsonl"))
    frozen_before = _export(client, admin_token, project_id, f"format=jsonl&snapshot={snapshot}")
    label(2)
    live_after = _gold(_export(client, admin_token, project_id, "format=jsonl"))
    assert _export(client, admin_token, project_id, f"format=jsonl&snapshot={snapshot}") == frozen_before
    assert len(live_before) == 5 and all(live_after[k] == v for k, v in live_before.items())
    new = set(live_after) - set(live_before)
    assert len(new) == 2 and all(live_after[k][3] == "neg" for k in new)  # only the new labels differ

    # Re-import the whole export into a new project: the same examples with the same labels.
    exported = _export(client, admin_token, project_id, "format=jsonl&include_unlabeled=true")
    copy_id = make_project(n=0, examples=[json.loads(line) for line in exported.decode().splitlines()])
    everything = _gold(exported)
    assert len(everything) == 9 and sum(v[3] is not None for v in everything.values()) == 7
    assert _gold(_export(client, admin_token, copy_id, "format=jsonl&include_unlabeled=true")) == everything

    # pandas reads all three formats straight back.
    import pandas as pd

    csv_bytes = _export(client, admin_token, project_id, "format=csv&include_unlabeled=true")
    for frame in (pd.read_json(io.BytesIO(exported), lines=True, dtype={"external_id": str}),
                  pd.read_csv(io.BytesIO(csv_bytes), dtype={"external_id": str}),
                  pd.read_parquet(io.BytesIO(_export(client, admin_token, project_id, "format=parquet&include_unlabeled=true")))):
        labels = {row.external_id: (None if pd.isna(row.label) else row.label) for row in frame.itertuples()}
        assert labels == {k: v[3] for k, v in everything.items()}

    # Hugging Face datasets reads both file formats straight back.
    (tmp_path / "gold.jsonl").write_bytes(exported)
    (tmp_path / "gold.parquet").write_bytes(_export(client, admin_token, project_id, "format=parquet&include_unlabeled=true"))
    for kind, name in (("json", "gold.jsonl"), ("parquet", "gold.parquet")):
        table = datasets.load_dataset(kind, data_files=str(tmp_path / name), split="train",
                                      cache_dir=str(tmp_path / f"hf-{kind}"))
        assert {r["external_id"]: r["label"] for r in table} == {k: v[3] for k, v in everything.items()}
        assert {r["external_id"]: r["text"] for r in table} == {k: v[0] for k, v in everything.items()}


def test_meta_with_an_integer_beyond_64_bits_round_trips(client, admin_token, make_project):
    big = 2**70 + 1
    project_id = make_project(n=0, examples=[{"external_id": "x", "text": "t", "label": "pos", "meta": {"n": big}}])
    rows = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl", headers=auth(admin_token)).data
    assert json.loads(rows)["meta"] == {"n": big}
    shown = client.get(f"/api/v1/projects/{project_id}/export?format=csv", headers=auth(admin_token)).data.decode()
    assert str(big) in shown
