"""Hostile or careless input (issue 16): each is a 4xx that names the field or line, never a 500,
and nothing is half-written."""

import io

import pytest

from tests.conftest import auth

TOO_BIG = str(2**64)


def _login(client, name):
    assert client.post("/login", data={"name": name, "password": "correct horse"}).status_code == 302


def test_integers_beyond_64_bits_in_forms_and_pages_are_refused(client, make_user, make_project):
    project_id = make_project(n=2)
    make_user("ann", "annotator")
    _login(client, "ann")
    for field in ("example_id", "lease_id", "duration_ms"):
        form = {"example_id": "1", "label": "pos", field: TOO_BIG}
        response = client.post(f"/projects/{project_id}/label/submit", data=form)
        assert response.status_code == 422 and field in response.get_data(as_text=True), field
    assert client.get(f"/?page={TOO_BIG}").status_code == 200  # an impossible page is an empty one
    assert client.get("/?page=-3").status_code == 200


def test_json_nested_very_deep_is_422(client, make_user, make_project):
    project_id = make_project(n=1)
    _, token = make_user("ann")
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), data=deep,
                           content_type="application/json")
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "body"


def test_a_lone_surrogate_in_meta_is_refused_with_its_line(client, admin_token, make_project):
    project_id = make_project(n=0)
    body = '{"examples": [{"external_id": "a", "text": "fine"}, {"external_id": "b", "text": "x", "meta": {"k": "\\ud800"}}]}'
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), data=body,
                           content_type="application/json")
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["line"] == 2 and response.json["errors"][0]["field"] == "meta"
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]["examples"] == 0


@pytest.mark.parametrize("kind", ["bytes", "decimal"])
def test_parquet_columns_of_unsupported_types_are_refused(client, admin_token, make_project, kind):
    import decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    project_id = make_project(n=0)
    value = b"\x00\xff" if kind == "bytes" else decimal.Decimal("1.50")
    table = pa.table({"external_id": ["a"], "text": ["hello"], "meta": [value]} if kind == "decimal"
                     else {"external_id": ["a"], "text": [value]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                           data={"file": (io.BytesIO(buffer.getvalue()), "rows.parquet")})
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["field"] in ("text", "meta")


def test_a_csv_with_an_unterminated_quote_is_an_error_not_a_swallowed_row(client, admin_token, make_project):
    project_id = make_project(n=0)
    data = b'external_id,text\na,"opened and never closed\nb,second row\n'
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                           data={"file": (io.BytesIO(data), "rows.csv")})
    assert response.status_code == 422, response.json
    assert response.json["errors"][0]["line"] == 2
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]["examples"] == 0


class UnreadableBody(io.RawIOBase):
    """A request body that fails the test if the server reads any of it."""

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return 0

    def readinto(self, buffer):
        raise AssertionError("the server read a body it should have refused")


def test_an_oversized_body_is_refused_before_it_is_read(client, admin_token):
    declared = {"CONTENT_LENGTH": str(200 * 1024**2)}  # what the client announces, as a slow sender would
    response = client.post("/login", input_stream=UnreadableBody(), content_type="application/x-www-form-urlencoded",
                           environ_overrides=declared)
    assert response.status_code == 413 and "at most 1,048,576 bytes" in response.get_data(as_text=True)
    response = client.post("/api/v1/projects", input_stream=UnreadableBody(), content_type="application/json",
                           headers=auth(admin_token), environ_overrides=declared)
    assert response.status_code == 413 and response.json["errors"][0]["field"] == "body"


def test_only_the_bulk_routes_take_large_bodies(client, admin_token, make_project):
    project_id = make_project(n=0)
    rows = [{"external_id": f"e{i}", "text": "x" * 1000} for i in range(2000)]  # about 2 MB
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), json={"examples": rows})
    assert response.status_code == 201 and response.json["imported"] == 2000
    response = client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token),
                            json={"settings": {}, "padding": "x" * (2 * 1024**2)})
    assert response.status_code == 413 and "too large" in response.json["error"].lower()


def _events_csv(client, admin_token, project_id, **params):
    import csv

    query = "&".join(f"{k}={v}" for k, v in {"format": "csv", "annotations": "all", **params}.items())
    response = client.get(f"/api/v1/projects/{project_id}/export?{query}", headers=auth(admin_token))
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_a_forged_source_is_ignored_and_an_import_source_must_be_a_plain_name(client, admin_token, make_user, make_project):
    project_id = make_project(n=2)
    _, token = make_user("ann")
    _login(client, "ann")
    for forged in ("review", "import:x", "=HYPERLINK(\"http://evil\")", "s" * 101):
        lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        if lease is None:
            break
        response = client.post(f"/projects/{project_id}/label/submit", data={
            "example_id": lease["example"]["id"], "lease_id": lease["lease"]["id"], "label": "pos", "source": forged})
        assert response.status_code == 200
    assert {row["source"] for row in _events_csv(client, admin_token, project_id)} == {"annotator"}
    for bad in ("=cmd", "x" * 61, "", 7):
        response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                               json={"examples": [{"external_id": "n", "text": "t"}], "source": bad})
        assert response.status_code == 422 and response.json["errors"][0]["field"] == "source", bad


def test_a_csv_export_carries_no_live_formula_unless_it_is_imported_data(client, admin_token, make_user, make_project):
    project_id = make_project(examples=[{"external_id": "=1+1", "text": "@SUM(A1)"}])
    _, token = make_user("-annie")  # a name a spreadsheet would read as a formula
    lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                           json={"example_id": lease["example"]["id"], "label": "pos"})
    assert response.status_code == 201
    events = _events_csv(client, admin_token, project_id)
    assert events[0]["annotator"] == "'-annie"  # people's names: always defused
    assert events[0]["external_id"] == "=1+1"  # imported data: kept as it is by default
    gold = _events_csv(client, admin_token, project_id, annotations="gold", escape_formulas="true")
    assert gold[0]["external_id"] == "'=1+1" and gold[0]["text"] == "'@SUM(A1)"


def test_a_database_that_never_answers_gives_fast_503s(tmp_path):
    import socket
    import time

    from app import create_app

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # accepts connections, never says a word
    url = f"postgresql+psycopg://nobody@127.0.0.1:{silent.getsockname()[1]}/nothing"
    app = create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": "x", "JOBS": "inline",
                      "DB_CONNECT_TIMEOUT_SECONDS": 1}, instance_path=str(tmp_path / "instance"))
    client = app.test_client()
    try:
        started = time.monotonic()
        health = client.get("/healthz")
        assert health.status_code == 503 and health.json["database"].startswith("error")
        assert time.monotonic() - started < 2
        started = time.monotonic()
        response = client.get("/api/v1/projects", headers=auth("hitl_whatever"))
        assert response.status_code == 503 and "database did not answer" in response.json["error"]
        assert time.monotonic() - started < 3
    finally:
        app.extensions["hitl_jobs"].stop()
        app.extensions["hitl_engine"].dispose()
        silent.close()


def test_a_parquet_decompression_bomb_is_refused(client, admin_token, make_project):
    import pyarrow as pa
    import pyarrow.parquet as pq

    project_id = make_project(n=0)
    buffer = io.BytesIO()
    pq.write_table(pa.table({"external_id": ["a", "b"], "text": ["a" * 10 * 1024**2, "b" * 10 * 1024**2]}), buffer,
                   compression="zstd")
    assert len(buffer.getvalue()) < 50_000  # 20 MB of text in a few KB
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                           data={"file": (io.BytesIO(buffer.getvalue()), "bomb.parquet")})
    assert response.status_code == 422 and "decompress" in response.json["errors"][0]["message"]
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]["examples"] == 0


def test_the_import_page_takes_a_large_body_only_from_someone_logged_in(app_factory, make_project):
    project_id = make_project(n=0)
    client = app_factory(WTF_CSRF_ENABLED=True).test_client()  # the CSRF check reads the form before the view
    declared = {"CONTENT_LENGTH": str(200 * 1024**2)}
    response = client.post(f"/projects/{project_id}/import", input_stream=UnreadableBody(),
                           content_type="multipart/form-data; boundary=x", environ_overrides=declared)
    assert response.status_code == 413  # refused unread: nobody is logged in


@pytest.mark.parametrize("data, content_type, said", [
    ('{"name": "X", "labels": ["a", "b"]', "application/json", "not valid JSON: Expecting"),
    ("name=X&labels=a", "application/x-www-form-urlencoded", "sent as application/json (Content-Type is "
                                                              "'application/x-www-form-urlencoded')"),
    ('["a", "b"]', "application/json", "must be a JSON object"),
])
def test_a_body_that_is_no_json_object_says_what_is_wrong_with_it(client, admin_token, data, content_type, said):
    response = client.post("/api/v1/projects", headers=auth(admin_token), data=data, content_type=content_type)
    assert response.status_code == 422 and said in response.json["error"] and response.json["errors"][0]["field"] == "body"
