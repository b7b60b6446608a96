"""The import page forgives: unknown columns kept in meta (or dropped), a guessed mapping, a file
kept when its mapping fails, and the same problem on many lines told once."""

import io
import json

from sqlalchemy import func, select

from labeling.models import ImportUpload
from tests.app.test_import_page import login_admin, upload
from tests.conftest import auth


def exported(client, project_id, admin_token) -> list[dict]:
    body = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl&include_unlabeled=true",
                      headers=auth(admin_token)).data.decode()
    return sorted((json.loads(line) for line in body.splitlines()), key=lambda r: r["external_id"])


def confirm(client, project_id, **form):
    return client.post(f"/projects/{project_id}/import/confirm", data=form)


def jsonl(rows) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def test_the_mapping_is_guessed_from_the_column_names_and_shown_before_importing(client, make_user, make_project):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    page, _ = upload(client, project_id, b"ID,Review Text,sentiment,stars\n1,great,pos,5\n", "r.csv")
    for column, field in (("ID", "external_id"), ("Review Text", "text"), ("sentiment", "label")):
        select_html = page.split(f'name="map:{column}"')[1].split("</select>")[0]
        assert f'<option value="{field}" selected>' in select_html, column
    stars = page.split('name="map:stars"')[1].split("</select>")[0]
    assert "selected" not in stars  # no field for it: it goes to meta unless changed
    assert 'name="unknown_columns" value="meta" checked' in page and 'name="csrf_token"' in page
    page, _ = upload(client, project_id, b"external_id,id,sentence,category\n1,9,hi,pos\n", "r.csv")
    assert '<option value="external_id" selected>' in page.split('name="map:external_id"')[1].split("</select>")[0]
    assert "selected" not in page.split('name="map:id"')[1].split("</select>")[0]  # the telling name wins


def test_an_unknown_column_goes_into_meta_by_default_or_is_dropped(client, make_user, make_project, admin_token):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    data = jsonl([{"id": "1", "review": "great", "stars": 5, "meta": {"lang": "en"}},
                  {"id": "2", "review": "bad", "stars": 1, "shop": "<b>x</b>"}])
    page, token = upload(client, project_id, data, "r.jsonl")
    form = {"token": token, "map:id": "external_id", "map:review": "text", "map:stars": "", "map:meta": "meta"}
    response = confirm(client, project_id, **form)
    assert response.status_code == 302
    rows = exported(client, project_id, admin_token)
    assert [r["meta"] for r in rows] == [{"lang": "en", "stars": 5}, {"stars": 1, "shop": "<b>x</b>"}]
    # The same file, its other columns left out, into another project.
    other = make_project(n=0)
    _, token = upload(client, other, data, "r.jsonl")
    assert confirm(client, other, **{**form, "token": token, "unknown_columns": "drop"}).status_code == 302
    assert [r.get("meta") for r in exported(client, other, admin_token)] == [{"lang": "en"}, None]
    # The API keeps its documented behaviour: an unknown field is a 422 naming it.
    api = client.post(f"/api/v1/projects/{other}/examples", headers=auth(admin_token),
                      json={"examples": [{"external_id": "3", "text": "t", "stars": 2}]})
    assert api.status_code == 422 and api.json["errors"][0]["field"] == "stars"


def test_a_mapping_without_a_text_column_keeps_the_file_to_map_again(client, make_user, make_project, admin_token):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    page, token = upload(client, project_id, b"id,body,<script>\n1,hello,x\n2,bye,y\n", "r.csv")
    response = confirm(client, project_id, token=token, **{"map:id": "external_id", "map:body": "", "map:<script>": ""})
    page = response.get_data(as_text=True)
    assert response.status_code == 422 and "field &#39;text&#39;: map a column to text" in page
    assert f'name="token" value="{token}"' in page  # the same staged file, no upload again
    assert 'name="map:&lt;script&gt;"' in page and "<script>" not in page.split("<main")[1]  # escaped
    response = confirm(client, project_id, token=token, **{"map:id": "external_id", "map:body": "text", "map:<script>": ""})
    assert response.status_code == 302
    assert [r["text"] for r in exported(client, project_id, admin_token)] == ["hello", "bye"]


def test_a_failed_import_keeps_its_file_to_map_again_without_uploading(client, make_user, make_project, admin_token, session):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    data = b"id,review,stars,sentiment\n1,great,5,pos\n2,bad,1,neg\n"
    _, token = upload(client, project_id, data, "r.csv")
    # The wrong column as the label: every line fails, and the page offers to map the file again.
    response = confirm(client, project_id, token=token, **{"map:id": "external_id", "map:review": "text",
                                                           "map:stars": "label", "map:sentiment": ""})
    status = client.get(response.location).get_data(as_text=True)
    assert "Nothing was imported" in status and 'data-testid="remap"' in status
    failed_id = int(response.location.rsplit("/", 1)[1])
    remap = client.get(f"/projects/{project_id}/imports/{failed_id}/remap").get_data(as_text=True)
    assert f'name="from_import" value="{failed_id}"' in remap and 'name="token"' not in remap
    assert '<option value="label" selected>' in remap.split('name="map:stars"')[1].split("</select>")[0]  # as chosen
    response = client.post(f"/projects/{project_id}/import/confirm", data={
        "from_import": str(failed_id), "map:id": "external_id", "map:review": "text", "map:stars": "",
        "map:sentiment": "label"})
    assert response.status_code == 302
    assert "Imported 2 examples (0 duplicates skipped, 2 labels)" in client.get(response.location).get_data(as_text=True)
    assert [(r["label"], r["meta"]) for r in exported(client, project_id, admin_token)] == [
        ("pos", {"stars": "5"}), ("neg", {"stars": "1"})]
    assert session.scalar(select(func.count()).select_from(ImportUpload)) == 0  # taken, then done with
    gone = client.get(f"/projects/{project_id}/imports/{failed_id}/remap")
    assert gone.status_code == 422 and "no longer kept" in gone.get_data(as_text=True)


def test_the_same_problem_on_many_lines_is_told_once(client, make_user, make_project, admin_token):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    rows = [{"external_id": str(i), "text": "t", "label": "maybe"} for i in range(500)]
    rows[3]["label"] = "pos"
    rows[10]["external_id"] = ""
    _, token = upload(client, project_id, jsonl(rows), "r.jsonl")
    response = confirm(client, project_id, token=token, **{
        "map:external_id": "external_id", "map:text": "text", "map:label": "label"})
    page = client.get(response.location).get_data(as_text=True)
    assert "line 1, 2, 3 and 496 more: field &#39;label&#39;: &#39;maybe&#39; is not one of the project&#39;s labels" in page
    assert "line 11: field &#39;external_id&#39;: required" in page
    assert page.split('data-testid="problem-groups"')[1].split("</ul>")[0].count("<li>") == 2 and "500 problems" in page
    job = client.get(f"/api/v1/imports/{response.location.rsplit('/', 1)[1]}", headers=auth(admin_token)).json
    assert job["error_groups"][0] == {"field": "label", "message": "'maybe' is not one of the project's labels",
                                      "lines": [1, 2, 3], "count": 499}


def test_the_api_may_ask_for_unknown_fields_in_meta_or_dropped(client, make_project, admin_token, session):
    project_id = make_project(n=0)
    url = f"/api/v1/projects/{project_id}/examples"
    rows = [{"external_id": "1", "text": "t", "stars": 2}]
    refused = client.post(url, headers=auth(admin_token), json={"examples": rows})
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "stars"  # the default
    assert session.scalar(select(func.count()).select_from(ImportUpload)) == 0  # a JSON body is not a file to map again
    bad = client.post(url, headers=auth(admin_token), json={"examples": rows, "unknown_columns": "keep"})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "unknown_columns"
    response = client.post(url, headers=auth(admin_token), json={"examples": rows, "unknown_columns": "meta"})
    assert response.status_code == 201, response.json
    file = jsonl([{"external_id": "2", "text": "u", "stars": 3}])
    response = client.post(url, headers=auth(admin_token), content_type="multipart/form-data",
                           data={"file": (io.BytesIO(file), "r.jsonl"), "unknown_columns": "drop"})
    assert response.status_code == 201, response.json
    assert [r.get("meta") for r in exported(client, project_id, admin_token)] == [{"stars": 2}, None]


def test_a_staged_file_never_imported_is_swept_away(client, make_user, make_project, app):
    import os
    from pathlib import Path

    from labeling.uploads import KEPT_FOR

    project_id = make_project(n=0)
    login_admin(client, make_user)
    _, old = upload(client, project_id, b"id,text\n1,a\n", "a.csv")
    staged = Path(app.instance_path) / "uploads" / f"{old}.csv"
    long_ago = staged.stat().st_mtime - KEPT_FOR.total_seconds() - 60
    os.utime(staged, (long_ago, long_ago))
    _, new = upload(client, project_id, b"id,text\n1,a\n", "b.csv")
    assert not staged.exists() and (staged.parent / f"{new}.csv").exists()
    assert confirm(client, project_id, token=old, **{"map:id": "external_id", "map:text": "text"}).status_code == 422
