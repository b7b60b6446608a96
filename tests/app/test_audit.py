"""The audit trail: events recorded with actor and target in the change's transaction, read back
newest first with filters (API and page)."""

from sqlalchemy import select

from labeling import audit
from labeling.db import utcnow
from labeling.models import Example, LabelFlag, Label
from tests.conftest import auth


def trail(client, token, query=""):
    response = client.get(f"/api/v1/audit{query}", headers=auth(token))
    assert response.status_code == 200, response.json
    return response.json["events"]


def test_project_work_is_recorded_with_its_actor_project_and_target(client, admin_token, make_project):
    project_id = make_project(n=4, examples=[{"external_id": f"e{i}", "text": f"review number {i} of {i}", "label": "pos" if i % 2 else "neg"}
                                             for i in range(4)])
    client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"settings": {"overlap": 2}})
    number = client.post(f"/api/v1/projects/{project_id}/snapshots", headers=auth(admin_token)).json["snapshot"]
    export = client.get(f"/api/v1/projects/{project_id}/export?format=csv&snapshot={number}", headers=auth(admin_token))
    assert export.status_code == 200
    run_id = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).json["run_id"]
    events = trail(client, admin_token, f"?project={project_id}")
    assert [e["action"] for e in events] == ["retrain.requested", "export.downloaded", "snapshot.created",
                                             "project.settings_changed", "import.started", "project.created"]
    assert {e["actor"] for e in events} == {"admin"} and {e["project"] for e in events} == {project_id}
    by_action = {e["action"]: e for e in events}
    assert by_action["retrain.requested"]["target"] == str(run_id)
    assert by_action["snapshot.created"]["target"] == str(number) and by_action["snapshot.created"]["details"] == {"labels": 4}
    assert by_action["export.downloaded"]["details"] == {"format": "csv", "annotations": "gold", "snapshot": number}
    assert by_action["project.settings_changed"]["details"] == {"keys": ["overlap"]}
    assert by_action["import.started"]["details"]["on_duplicate"] == "skip"
    assert [e["id"] for e in events] == sorted((e["id"] for e in events), reverse=True)


def test_a_flag_resolution_is_recorded(client, admin_token, make_user, make_project, session):
    project_id = make_project(examples=[{"external_id": "a", "text": "x", "label": "pos"}])
    example = session.scalar(select(Example).where(Example.project_id == project_id))
    label = session.scalar(select(Label).where(Label.example_id == example.id))
    flag = LabelFlag(project_id=project_id, label_id=label.id, example_id=example.id, given="pos", suggested="neg",
                     score=0.99, reason="model_disagrees", status="open", created_at=utcnow())
    session.add(flag)
    session.commit()
    _, reviewer = make_user("rev", "reviewer")
    assert client.post(f"/api/v1/flags/{flag.id}", headers=auth(reviewer), json={"action": "confirm"}).status_code == 200
    [event] = trail(client, admin_token, "?action=flag.resolved")
    assert (event["actor"], event["project"], event["target"]) == ("rev", project_id, str(flag.id))
    assert event["details"] == {"action": "confirm", "given": "pos", "label": "neg"}


def test_filters_and_pages(client, admin_token, make_user):
    for name in ("u1", "u2", "u3"):
        client.post("/api/v1/users", headers=auth(admin_token), json={"name": name, "role": "annotator"})
    _, ann = make_user("ann", "annotator")
    client.post("/api/v1/tokens", headers=auth(ann), json={"name": "mine"})
    assert [e["target"] for e in trail(client, admin_token, "?action=user.created")] == ["u3", "u2", "u1"]
    assert [e["action"] for e in trail(client, admin_token, "?actor=ann")] == ["token.created"]
    assert [e["action"] for e in trail(client, admin_token, "?action=token")] == ["token.created"]  # a family
    assert [e["target"] for e in trail(client, admin_token, "?action=user.created&limit=1&offset=1")] == ["u2"]
    assert trail(client, admin_token, "?project=5") == []
    assert all("project" not in e for e in trail(client, admin_token))
    for query, field in (("?action=user.exploded", "action"), ("?project=abc", "project"), ("?limit=0", "limit")):
        response = client.get(f"/api/v1/audit{query}", headers=auth(admin_token))
        assert response.status_code == 422 and response.json["errors"][0]["field"] == field


def test_every_action_is_listed_in_the_openapi_document(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert schemas["AuditAction"]["enum"] == list(audit.ACTIONS)
    for action in ("user.created", "user.role_changed", "user.deactivated", "user.reactivated", "user.password_reset",
                   "user.password_changed", "token.created", "token.revoked"):
        assert action in audit.ACTIONS


def test_the_audit_page_filters_and_pages(app, client, admin_token, make_user):
    from tests.app.test_people import logged_in

    for i in range(53):
        client.post("/api/v1/users", headers=auth(admin_token), json={"name": f"user{i:02d}", "role": "annotator"})
    make_user("boss", "admin")
    browser = logged_in(app, "boss")
    first = browser.get("/audit?action=user.created").get_data(as_text=True)
    assert "user52" in first and "user03" in first and "user02" not in first  # 50 a page
    assert "Older →" in first and 'action=user.created' in first.split("Older →")[0].rsplit("href=", 1)[1]
    second = browser.get("/audit?action=user.created&page=2").get_data(as_text=True)
    assert "user02" in second and "user00" in second and "user52" not in second and "Older →" not in second
    assert "user52" not in browser.get("/audit?actor=nobody").get_data(as_text=True)
    bad = browser.get("/audit?action=bogus&project=x1")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and 'data-testid="audit-filters"' in text  # the form stays, to fix the filter
    assert "project: must be a project id" in text and 'value="x1"' in text


def test_the_audit_page_shows_details_in_words_and_links_a_relabeled_example(app, client, admin_token, make_user,
                                                                             make_project):
    from tests.app.test_people import logged_in

    project_id = make_project(n=1)
    example_id = client.get(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token)).json["examples"][0]["id"]
    assert client.post(f"/api/v1/examples/{example_id}/relabel", headers=auth(admin_token),
                       json={"label": "neg"}).status_code == 201
    make_user("ann", "annotator")
    client.put(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token),
               json={"members": [{"user": "ann", "role": "annotator"}]})
    make_user("boss", "admin")
    page = logged_in(app, "boss").get("/audit").get_data(as_text=True)
    assert f'href="/projects/{project_id}/examples/{example_id}"' in page
    assert "[{" not in page and "{&#39;" not in page and "None" not in page  # no Python reprs
    assert "user: ann, role: annotator" in page


def test_the_audit_page_names_a_deleted_project_as_text_not_a_link(app, client, admin_token, make_user, make_project):
    from tests.app.test_people import logged_in

    kept = make_project(n=1)
    gone = make_project(n=1)
    name = client.get(f"/api/v1/projects/{gone}", headers=auth(admin_token)).json["name"]
    assert client.delete(f"/api/v1/projects/{gone}?confirm={name}", headers=auth(admin_token)).status_code == 204
    make_user("boss", "admin")
    page = logged_in(app, "boss").get("/audit").get_data(as_text=True)
    assert f'href="/projects/{gone}"' not in page  # it would be a 404
    assert f"{name} #{gone} (deleted)" in page
    kept_name = client.get(f"/api/v1/projects/{kept}", headers=auth(admin_token)).json["name"]
    assert f'href="/projects/{kept}">{kept_name} #{kept}</a>' in page  # named as the deleted one is
