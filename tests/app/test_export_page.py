"""Exporting from the browser: the current labels or a frozen snapshot, the same file as the API."""

from urllib.parse import quote

from sqlalchemy import select

from tests.conftest import auth


def login(client, make_user, name, role):
    make_user(name, role)
    client.post("/login", data={"name": name, "password": "correct horse"})


def label(client, token, project_id, external_id, value):
    example = next(e for e in client.get(f"/api/v1/projects/{project_id}/examples?limit=100", headers=auth(token))
                   .json["examples"] if e["external_id"] == external_id)
    response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                           json={"example_id": example["id"], "label": value})
    assert response.status_code == 201, response.json


def test_an_admin_freezes_a_snapshot_and_downloads_it_as_the_api_gives_it(client, make_user, make_project, admin_token):
    project_id = make_project(n=4)
    login(client, make_user, "boss", "admin")
    assert 'data-testid="export-link"' in client.get(f"/projects/{project_id}").get_data(as_text=True)
    page = client.get(f"/projects/{project_id}/export").get_data(as_text=True)
    assert 'data-testid="nothing-labeled"' in page
    label(client, admin_token, project_id, "e0", "pos")
    label(client, admin_token, project_id, "e1", "neg")
    frozen = client.post(f"/projects/{project_id}/export/snapshots", follow_redirects=True).get_data(as_text=True)
    n = int(frozen.split("Snapshot ")[1].split(" frozen")[0])  # an import's retrain may have taken one before
    assert f"Snapshot {n} frozen: 2 labels" in frozen and "nothing-labeled" not in frozen
    assert f'name="snapshot" min="1" step="1" value="{n}"' in frozen  # the new snapshot is the one chosen
    again = client.post(f"/projects/{project_id}/export/snapshots", follow_redirects=True).get_data(as_text=True)
    assert f"No label or example changed since snapshot {n} (2 labels): no new snapshot." in again
    assert f"<td>#{n + 1}</td>" not in again
    with client.application.extensions["hitl_sessionmaker"]() as s:  # a flag raised after it: a new one differs
        from labeling.db import utcnow
        from labeling.models import Label, LabelFlag

        first = s.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.id)).first()
        s.add(LabelFlag(project_id=project_id, label_id=first.id, example_id=first.example_id, given="pos",
                        suggested="neg", score=0.9, reason="model_disagrees", status="open", created_at=utcnow()))
        s.commit()
    flagged = client.post(f"/projects/{project_id}/export/snapshots", follow_redirects=True).get_data(as_text=True)
    assert f"Snapshot {n + 1} frozen: 2 labels" in flagged
    label(client, admin_token, project_id, "e2", "pos")  # after the snapshot: not in it

    downloaded = client.get(f"/projects/{project_id}/export/download?snapshot={n}&format=csv&annotations=gold")
    body = downloaded.data  # streamed: read before the next request
    assert downloaded.status_code == 200 and "attachment" in downloaded.headers["Content-Disposition"]
    assert f"snapshot{n}.csv" in downloaded.headers["Content-Disposition"]
    from_api = client.get(f"/api/v1/projects/{project_id}/export?snapshot={n}&format=csv", headers=auth(admin_token)).data
    assert body == from_api and body.count(b"\n") == 3  # header and two rows
    current = client.get(f"/projects/{project_id}/export/download?snapshot=&format=jsonl&annotations=gold")
    assert current.data.count(b"\n") == 3 and b'"external_id":"e2"' in current.data

    audit = client.get("/api/v1/audit?limit=20", headers=auth(admin_token)).json["events"]
    mine = [e for e in audit if e["actor"] == "boss"]
    assert [e["action"] for e in mine][:3] == ["export.downloaded", "export.downloaded", "snapshot.created"]


def test_a_bad_choice_names_the_field_and_other_roles_are_refused(client, make_user, make_project):
    project_id = make_project(n=2)
    login(client, make_user, "boss", "admin")
    bad = client.get(f"/projects/{project_id}/export/download?format=xlsx")
    assert bad.status_code == 422 and "field &#39;format&#39;: must be one of jsonl, csv, parquet" in bad.get_data(as_text=True)
    missing = client.get(f"/projects/{project_id}/export/download?snapshot=7")  # back to the form, which says so
    assert missing.status_code == 302 and missing.location.endswith(f"/projects/{project_id}/export?snapshot=7")
    for odd_number in ("abc", "0", "²", "99999999999999999999", "-1"):  # as a missing one, and never a 500
        odd = client.get(f"/projects/{project_id}/export/download?snapshot={odd_number}")
        assert odd.status_code == 302 and odd.location.endswith(f"/projects/{project_id}/export?snapshot={quote(odd_number)}")
        assert "No snapshot" in client.get(odd.location).get_data(as_text=True)
    asked = client.get(f"/projects/{project_id}/export?snapshot=7").get_data(as_text=True)
    assert "No snapshot 7 in this project: the current labels are chosen instead." in asked
    assert 'name="snapshot" min="1" step="1" value=""' in asked  # never a silent download of another set
    client.post("/logout")
    for role in ("reviewer", "annotator"):
        login(client, make_user, role[:3], role)
        assert 'data-testid="export-link"' not in client.get(f"/projects/{project_id}").get_data(as_text=True)
        assert client.get(f"/projects/{project_id}/export").status_code == 403
        assert client.get(f"/projects/{project_id}/export/download").status_code == 403
        assert client.post(f"/projects/{project_id}/export/snapshots").status_code == 403
        client.post("/logout")


def test_snapshots_come_a_page_at_a_time(client, make_user, make_project, admin_token):
    project_id = make_project(n=2)
    login(client, make_user, "boss", "admin")
    for _ in range(21):
        last = client.post(f"/api/v1/projects/{project_id}/snapshots", headers=auth(admin_token)).json["snapshot"]
    first = client.get(f"/projects/{project_id}/export").get_data(as_text=True)
    assert f"<td>#{last}</td>" in first and f"<td>#{last - 19}</td>" in first and "Older →" in first
    assert f"<td>#{last - 20}</td>" not in first
    second = client.get(f"/projects/{project_id}/export?page=2").get_data(as_text=True)
    assert f"<td>#{last - 20}</td>" in second and f"<td>#{last - 19}</td>" not in second and "← Newer" in second
    past = client.get(f"/projects/{project_id}/export?page=9").get_data(as_text=True)
    assert "No snapshots on page 9" in past


def test_the_api_refuses_an_empty_snapshot_rather_than_exporting_the_current_labels(client, make_project, admin_token):
    project_id = make_project(n=2)
    for value in ("", "²"):
        refused = client.get(f"/api/v1/projects/{project_id}/export?snapshot={value}", headers=auth(admin_token))
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "snapshot"


def test_a_name_in_another_script_still_downloads_with_an_ascii_filename(client, make_user, admin_token):
    created = client.post("/api/v1/projects", headers=auth(admin_token), json={"name": "日本 reviews", "labels": ["a", "b"]})
    login(client, make_user, "boss", "admin")
    response = client.get(f"/projects/{created.json['id']}/export/download?format=csv")
    response.data  # streamed: read it
    assert response.headers["Content-Disposition"] == 'attachment; filename="_reviews-gold.csv"'
