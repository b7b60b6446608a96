"""Importing from the browser: preview, field mapping, all-or-nothing."""

import io

from tests.conftest import auth


def login_admin(client, make_user):
    make_user("boss", "admin")
    client.post("/login", data={"name": "boss", "password": "correct horse"})


def upload(client, project_id, data: bytes, filename: str) -> tuple[str, str]:
    """Upload a file to the preview step; returns the preview page and the staged file's token."""
    page = client.post(f"/projects/{project_id}/import", data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data").get_data(as_text=True)
    return page, page.split('name="token" value="')[1].split('"')[0]


def test_preview_then_import_with_a_mapping(client, make_user, make_project, admin_token):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    data = b"id,review,sentiment,stars\n1,great,pos,5\n2,bad,neg,1\n"
    page, token = upload(client, project_id, data, "r.csv")
    assert 'name="map:review"' in page and "great · bad" in page
    response = client.post(f"/projects/{project_id}/import/confirm", data={
        "token": token, "map:id": "external_id", "map:review": "text", "map:sentiment": "label", "map:stars": ""})
    assert response.status_code == 302 and "/imports/" in response.location  # the import's status page
    status = client.get(response.location).get_data(as_text=True)
    assert "Imported 2 examples (0 duplicates skipped, 2 labels)" in status
    assert "#" in client.get(f"/projects/{project_id}/import").get_data(as_text=True)  # listed under recent imports
    exported = client.get(f"/api/v1/projects/{project_id}/export?format=csv", headers=auth(admin_token)).data.decode()
    assert "1,great,,,\"{\"\"stars\"\": \"\"5\"\"}\",pos" in exported


def test_a_file_without_an_id_column_imports_with_ids_made_from_content(client, make_user, make_project, admin_token):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    _, token = upload(client, project_id, b"review,sentiment\ngreat,pos\nbad,neg\n", "r.csv")
    response = client.post(f"/projects/{project_id}/import/confirm", data={
        "token": token, "map:review": "text", "map:sentiment": "label"})
    assert response.status_code == 302, response.get_data(as_text=True)
    assert "Imported 2 examples" in client.get(response.location).get_data(as_text=True)
    _, token = upload(client, project_id, b"a,b\n1,x\n2,y\n", "two.csv")
    twice = client.post(f"/projects/{project_id}/import/confirm", data={
        "token": token, "map:a": "external_id", "map:b": "external_id"})
    assert twice.status_code == 422 and "map at most one column to external_id" in twice.get_data(as_text=True)


def test_the_preview_marks_empty_and_missing_values(client, make_user, make_project):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    page, _ = upload(client, project_id, b'{"id": "1", "note": ""}\n{"id": "2"}\n{"id": "3", "note": "kept"}\n', "r.jsonl")
    assert "— · — · kept" in page


def test_a_bad_file_imports_nothing_and_lists_the_problems(client, make_user, make_project, admin_token):
    project_id = make_project(n=0)
    login_admin(client, make_user)
    data = b'{"external_id": "1", "text": "ok"}\n{"external_id": "2", "text": "x", "label": "maybe"}\n'
    _, token = upload(client, project_id, data, "r.jsonl")
    response = client.post(f"/projects/{project_id}/import/confirm", follow_redirects=True, data={
        "token": token, "map:external_id": "external_id", "map:text": "text", "map:label": "label"})
    page = response.get_data(as_text=True)
    assert "Nothing was imported" in page and "line 2: field &#39;label&#39;: &#39;maybe&#39; is not one" in page
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]["examples"] == 0
    again = client.post(f"/projects/{project_id}/import/confirm", data={"token": token, "map:external_id": "external_id"})
    assert again.status_code == 422  # the staged file is gone: choose it again
    assert client.post(f"/projects/{project_id}/import/confirm", data={"token": "../../etc/passwd"}).status_code == 422


def test_the_page_can_update_duplicates(client, make_user, make_project, admin_token):
    project_id = make_project(n=0, examples=[{"external_id": "1", "text": "old text"}])
    login_admin(client, make_user)

    def import_csv(data: bytes, **form):
        page, token = upload(client, project_id, data, "r.csv")
        assert 'name="update_duplicates"' in page
        return client.post(f"/projects/{project_id}/import/confirm", follow_redirects=True,
                           data={"token": token, "map:id": "external_id", "map:review": "text", **form})

    assert "1 duplicate skipped" in import_csv(b"id,review\n1,new text\n").get_data(as_text=True)
    assert "1 duplicate updated" in import_csv(b"id,review\n1,new text\n", update_duplicates="1").get_data(as_text=True)
    exported = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl&include_unlabeled=true",
                          headers=auth(admin_token)).data.decode()
    assert '"text":"new text"' in exported


def test_the_status_page_polls_until_the_import_finishes(client, make_user, make_project, app):
    """A queued import shows its progress and keeps polling; a finished one stops the polling (286)."""
    from labeling import imports
    from labeling.db import utcnow
    from labeling.models import Project

    project_id = make_project(n=0)
    login_admin(client, make_user)
    with app.extensions["hitl_sessionmaker"]() as session:
        job = imports.start_import(session, session.get(Project, project_id), fmt="jsonl", now=utcnow(),
                                   filename="big.jsonl")
        imports.store_upload(session, job, io.BytesIO(b'{"external_id": "1", "text": "a"}\n'))
        job_id = job.id
    page = client.get(f"/projects/{project_id}/imports/{job_id}").get_data(as_text=True)
    assert "Waiting for a worker" in page and 'hx-trigger="every 1s"' in page and "<progress" in page
    assert client.get(f"/projects/{project_id}/imports/{job_id}/fragment").status_code == 200
    imports.execute_import(app.extensions["hitl_sessionmaker"], job_id)
    fragment = client.get(f"/projects/{project_id}/imports/{job_id}/fragment")
    assert fragment.status_code == 286 and "Imported 1 example " in fragment.get_data(as_text=True)
    other = make_project(n=0)
    assert client.get(f"/projects/{other}/imports/{job_id}").status_code == 404


def test_an_archived_project_offers_no_import_and_refuses_a_file_before_the_mapping(client, make_user, make_project,
                                                                                   admin_token):
    project_id = make_project(n=2)
    login_admin(client, make_user)
    assert client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"archived": True}).status_code == 200
    assert f"/projects/{project_id}/import" not in client.get(f"/projects/{project_id}").get_data(as_text=True)
    page = client.get(f"/projects/{project_id}/import").get_data(as_text=True)
    assert "nothing can be imported into it" in page and 'type="file"' not in page
    refused = client.post(f"/projects/{project_id}/import", data={"file": (io.BytesIO(b"id,text\n9,new\n"), "r.csv")},
                          content_type="multipart/form-data", follow_redirects=True)
    assert refused.status_code == 200 and "nothing can be imported into it" in refused.get_data(as_text=True)
    assert 'name="token"' not in refused.get_data(as_text=True)  # no file staged, no mapping to lose
    examples = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]["examples"]
    assert examples == 2


def test_a_file_with_nothing_to_map_is_refused_before_the_mapping_naming_why(client, make_user, make_project):
    """An empty file, or one that is not JSONL, gets a sentence saying so, not an empty mapping form."""
    project_id = make_project(n=0)
    login_admin(client, make_user)
    cases = [(b"", "r.jsonl", "the file is empty"), (b"\n\n", "r.jsonl", "the file is empty"),
             (b"id,text\n", "r.csv", "the file has no rows below its header"), (b"", "r.csv", "the file is empty"),
             (b"<html>not json</html>\n[1, 2]\n", "r.jsonl", "line 1 is not a JSON object"),
             (b"\n\"just a string\"\n", "r.jsonl", "line 2 is not a JSON object"),
             (b"id,text\n1,a\n", "r.parquet", "not a Parquet file (no Parquet footer at its end)"),
             (b"{}\n{}\n", "r.jsonl", "the file&#39;s objects have no fields"),
             (bytes(range(256)) * 4, "random.csv", "line 1: not a readable CSV header (bytes that are not UTF-8 text"),
             (b"\x00\x01\x02id\x07,text\n1,a\n", "r.csv", "line 1: not a readable CSV header")]
    for data, filename, reason in cases:
        refused = client.post(f"/projects/{project_id}/import", data={"file": (io.BytesIO(data), filename)},
                              content_type="multipart/form-data", follow_redirects=True)
        page = refused.get_data(as_text=True)
        assert f"Could not read the file: {reason}" in page, (data, page)
        assert 'name="token"' not in page and 'name="map:' not in page
    from app.ui.import_preview import upload_dir
    with client.application.app_context():
        assert not list(upload_dir().glob("*")), "a refused file is not kept"
    # a file with a stray bad line and objects after it still gets its preview (the import names the line)
    page, _ = upload(client, project_id, b'oops\n{"external_id": "1", "text": "ok"}\n', "r.jsonl")
    assert 'name="map:text"' in page


def test_a_page_of_projects_past_the_end_says_so_instead_of_no_projects(client, make_user, make_project):
    make_project(n=1)
    login_admin(client, make_user)
    page = client.get("/?page=999").get_data(as_text=True)
    assert "No projects on page 999" in page and "No projects yet" not in page
