"""Every route declares its roles, and anonymous or wrong-role callers are turned away."""

import re

import pytest

from tests.conftest import auth

PUBLIC = {"static", "auth.login", "health.healthz", "api.openapi", "metrics.metrics"}  # metrics: token optional


def _routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            url = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
            yield rule.endpoint, method, url


def test_every_view_declares_its_roles(app):
    undeclared = [e for e, f in app.view_functions.items() if e != "static" and not hasattr(f, "required_roles")]
    assert undeclared == []


def test_anonymous_requests_are_refused(client, app):
    for endpoint, method, url in _routes(app):
        if endpoint in PUBLIC:
            continue
        response = client.open(url, method=method)
        if url.startswith("/api/"):
            assert response.status_code == 401, (method, url, response.status_code)
            assert response.json["error"] and response.json["errors"] == []
        else:
            assert response.status_code == 302 and "/login" in response.location, (method, url)


def test_bad_token_is_401(client):
    response = client.get("/api/v1/projects", headers=auth("hitl_not-a-real-token"))
    assert response.status_code == 401
    assert "not valid" in response.json["error"]


def test_annotator_is_refused_admin_and_reviewer_routes(client, app, make_user, make_project):
    make_project(n=2)  # project 1 exists: a missing project is a 404 to anyone but an admin
    _, token = make_user("ann", "annotator")
    checked = 0
    for endpoint, method, url in _routes(app):
        roles = app.view_functions[endpoint].required_roles
        if not roles or "annotator" in roles:
            continue
        if url.startswith("/api/"):
            response = client.open(url, method=method, headers=auth(token))
            assert response.status_code == 403, (method, url, response.status_code)
            assert "role" in response.json["error"]
            checked += 1
    assert checked >= 8


def test_reviewer_can_read_but_not_administer(client, make_user, make_project):
    project_id = make_project(n=2)
    _, token = make_user("rev", "reviewer")
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(token)).status_code == 200
    assert client.get(f"/api/v1/projects/{project_id}/runs", headers=auth(token)).status_code == 200
    assert client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(token)).status_code == 403
    assert client.get(f"/api/v1/projects/{project_id}/export", headers=auth(token)).status_code == 403


@pytest.mark.parametrize("role,status", [("annotator", 403), ("admin", 302)])
def test_page_form_roles(app, make_user, role, status):
    make_user("u1", role)
    client = app.test_client()
    client.post("/login", data={"name": "u1", "password": "correct horse"})
    response = client.post("/projects", data={"name": "x", "labels": "a,b"})
    assert response.status_code == status


def test_project_form_with_bad_input_is_a_422_that_names_the_problem(app, make_user):
    make_user("boss", "admin")
    client = app.test_client()
    client.post("/login", data={"name": "boss", "password": "correct horse"})
    response = client.post("/projects", data={"name": "Dupes", "labels": "a,a"})
    assert response.status_code == 422 and "label names must be unique" in response.get_data(as_text=True)
    assert "Dupes" not in client.get("/").get_data(as_text=True).split("New project")[0]
