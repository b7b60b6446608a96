"""People: the users API (admin), deactivation, the last-admin guard, and sessions that end at once
on logout, password change, reset and deactivation."""

import pytest
from sqlalchemy import select

from labeling.models import AuditEvent
from tests.conftest import auth


def login(client, name, password="correct horse"):
    return client.post("/login", data={"name": name, "password": password})


def logged_in(app, name, password="correct horse"):
    client = app.test_client()
    assert login(client, name, password).status_code == 302
    return client


def is_logged_in(client) -> bool:
    response = client.get("/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def events(session, action):
    session.rollback()  # a new read transaction: SQLite's would still see its first snapshot
    return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def test_an_admin_creates_and_lists_users(client, admin_token, session):
    response = client.post("/api/v1/users", headers=auth(admin_token),
                           json={"name": "bob", "role": "reviewer", "password": "long enough"})
    assert response.status_code == 201
    body = response.json
    assert body["name"] == "bob" and body["role"] == "reviewer" and body["active"] is True
    assert set(body) == {"id", "name", "role", "active", "created_at"}
    assert client.post("/login", data={"name": "bob", "password": "long enough"}).status_code == 302
    token_only = client.post("/api/v1/users", headers=auth(admin_token), json={"name": "script", "role": "annotator"})
    assert token_only.status_code == 201
    listed = client.get("/api/v1/users", headers=auth(admin_token)).json["users"]
    assert [u["name"] for u in listed] == ["admin", "bob", "script"]
    created = events(session, "user.created")
    assert [(e.actor_name, e.target, e.details["role"]) for e in created] == [("admin", "bob", "reviewer"),
                                                                             ("admin", "script", "annotator")]


@pytest.mark.parametrize("body,field,status", [
    ({"name": "bob", "role": "boss"}, "role", 422),
    ({"name": "b o b", "role": "annotator"}, "name", 422),
    ({"name": 7, "role": "annotator"}, "name", 422),
    ({"name": "bob", "role": "annotator", "password": "short"}, "password", 422),
    ({"name": "bob", "role": "annotator", "password": 12345678}, "password", 422),
])
def test_bad_user_input_is_a_422_naming_the_field(client, admin_token, body, field, status):
    response = client.post("/api/v1/users", headers=auth(admin_token), json=body)
    assert response.status_code == status and response.json["errors"][0]["field"] == field


def test_a_second_user_with_the_same_name_is_a_409(client, admin_token):
    assert client.post("/api/v1/users", headers=auth(admin_token), json={"name": "bob", "role": "annotator"}).status_code == 201
    again = client.post("/api/v1/users", headers=auth(admin_token), json={"name": "bob", "role": "admin"})
    assert again.status_code == 409 and "bob" in again.json["error"]


def test_annotators_and_reviewers_are_refused_the_admin_routes(client, make_user, admin_token):
    _, annotator = make_user("ann", "annotator")
    _, reviewer = make_user("rev", "reviewer")
    for token in (annotator, reviewer):
        assert client.get("/api/v1/users", headers=auth(token)).status_code == 403
        assert client.post("/api/v1/users", headers=auth(token), json={"name": "x", "role": "admin"}).status_code == 403
        assert client.patch("/api/v1/users/1", headers=auth(token), json={"role": "admin"}).status_code == 403
        assert client.get("/api/v1/audit", headers=auth(token)).status_code == 403
        assert client.get("/api/v1/tokens?user=admin", headers=auth(token)).status_code == 403


def test_patch_changes_the_role_and_names_bad_fields(client, admin_token, make_user, session):
    bob, _ = make_user("bob", "annotator")
    response = client.patch(f"/api/v1/users/{bob.id}", headers=auth(admin_token), json={"role": "reviewer"})
    assert response.status_code == 200 and response.json["role"] == "reviewer"
    [event] = events(session, "user.role_changed")
    assert (event.actor_name, event.target, event.details) == ("admin", "bob", {"from": "annotator", "to": "reviewer"})
    for body, field in (({"role": "king"}, "role"), ({"active": "no"}, "active"), ({"password": "x" * 10}, "password")):
        bad = client.patch(f"/api/v1/users/{bob.id}", headers=auth(admin_token), json=body)
        assert bad.status_code == 422 and bad.json["errors"][0]["field"] == field, body
    assert client.patch("/api/v1/users/999", headers=auth(admin_token), json={"role": "admin"}).status_code == 404


def test_deactivation_ends_sessions_and_tokens_at_once(app, client, admin_token, make_user, session):
    bob, bob_token = make_user("bob", "reviewer")
    browser = logged_in(app, "bob")
    assert client.get("/api/v1/projects", headers=auth(bob_token)).status_code == 200
    response = client.patch(f"/api/v1/users/{bob.id}", headers=auth(admin_token), json={"active": False})
    assert response.status_code == 200 and response.json["active"] is False
    assert client.get("/api/v1/projects", headers=auth(bob_token)).status_code == 401
    assert not is_logged_in(browser)
    assert login(app.test_client(), "bob").status_code == 400
    [event] = events(session, "user.deactivated")
    assert (event.actor_name, event.target, event.details) == ("admin", "bob", {"tokens_revoked": 1})
    # Reactivated: a new login works, but neither the old cookie nor the old token comes back.
    again = client.patch(f"/api/v1/users/{bob.id}", headers=auth(admin_token), json={"active": True})
    assert again.status_code == 200 and again.json["active"] is True
    assert client.get("/api/v1/projects", headers=auth(bob_token)).status_code == 401
    assert not is_logged_in(browser)
    assert is_logged_in(logged_in(app, "bob"))
    assert [e.target for e in events(session, "user.reactivated")] == ["bob"]


def test_the_last_active_admin_cannot_be_demoted_or_deactivated(client, admin_token, make_user, session):
    admin_id = client.get("/api/v1/users", headers=auth(admin_token)).json["users"][0]["id"]
    for body in ({"role": "reviewer"}, {"active": False}, {"role": "admin", "active": False}):
        response = client.patch(f"/api/v1/users/{admin_id}", headers=auth(admin_token), json=body)
        assert response.status_code == 409 and "last active admin" in response.json["error"], body
    other, _ = make_user("other", "admin")
    client.patch(f"/api/v1/users/{other.id}", headers=auth(admin_token), json={"active": False})
    # A deactivated admin does not count: still the last one.
    assert client.patch(f"/api/v1/users/{admin_id}", headers=auth(admin_token), json={"role": "reviewer"}).status_code == 409
    client.patch(f"/api/v1/users/{other.id}", headers=auth(admin_token), json={"active": True})
    assert client.patch(f"/api/v1/users/{admin_id}", headers=auth(admin_token), json={"role": "reviewer"}).status_code == 200
    # Refused changes left no audit event (recorded in the change's transaction).
    assert [e.target for e in events(session, "user.role_changed")] == ["admin"]
    assert [e.target for e in events(session, "user.deactivated")] == ["other"]


def test_a_refused_patch_changes_nothing(client, admin_token, make_user, session):
    bob, _ = make_user("bob", "annotator")
    response = client.patch(f"/api/v1/users/{bob.id}", headers=auth(admin_token), json={"role": "reviewer", "active": "x"})
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "active"
    listed = {u["name"]: u for u in client.get("/api/v1/users", headers=auth(admin_token)).json["users"]}
    assert listed["bob"]["role"] == "annotator" and listed["bob"]["active"] is True
    assert events(session, "user.role_changed") == []


def test_a_session_cookie_saved_before_logout_is_refused_afterwards(app, make_user):
    make_user("alice", "annotator")
    browser = logged_in(app, "alice")
    saved = browser.get_cookie("session").value
    copy = app.test_client()
    copy.set_cookie("session", saved)
    assert is_logged_in(copy)
    assert browser.post("/logout").status_code == 302
    assert not is_logged_in(browser)
    copy.set_cookie("session", saved)
    assert not is_logged_in(copy)
    assert is_logged_in(logged_in(app, "alice"))  # logging in again works


def test_changing_my_password_needs_the_current_one_and_ends_my_other_sessions(app, make_user, session):
    make_user("alice", "annotator")
    here, elsewhere = logged_in(app, "alice"), logged_in(app, "alice")
    saved = here.get_cookie("session").value
    page = here.get("/account").get_data(as_text=True)
    assert 'name="current_password"' in page and 'name="csrf_token"' in page
    wrong = here.post("/account/password", data={"current_password": "nope", "new_password": "new password 1",
                                                  "confirm_password": "new password 1"})
    assert wrong.status_code == 422 and "current password is not right" in wrong.get_data(as_text=True)
    differ = here.post("/account/password", data={"current_password": "correct horse", "new_password": "new password 1",
                                                   "confirm_password": "new password 2"})
    assert differ.status_code == 422 and "differ" in differ.get_data(as_text=True)
    short = here.post("/account/password", data={"current_password": "correct horse", "new_password": "short",
                                                  "confirm_password": "short"})
    assert short.status_code == 422 and "The new password must have at least 8 characters" in short.get_data(as_text=True)
    assert is_logged_in(elsewhere)
    done = here.post("/account/password", data={"current_password": "correct horse", "new_password": "new password 1",
                                                 "confirm_password": "new password 1"})
    assert done.status_code == 302
    assert is_logged_in(here)  # this browser is logged in again
    assert not is_logged_in(elsewhere)
    old = app.test_client()
    old.set_cookie("session", saved)
    assert not is_logged_in(old)
    assert login(app.test_client(), "alice").status_code == 400
    assert login(app.test_client(), "alice", "new password 1").status_code == 302
    [event] = events(session, "user.password_changed")
    assert (event.actor_name, event.target) == ("alice", "alice")


def test_an_admin_resets_a_password_through_the_api(app, client, admin_token, make_user, session):
    user, token = make_user("alice", "annotator")
    browser = logged_in(app, "alice")
    assert client.post(f"/api/v1/users/{user.id}/reset-password", headers=auth(token)).status_code == 403
    assert client.post("/api/v1/users/999999/reset-password", headers=auth(admin_token)).status_code == 404
    response = client.post(f"/api/v1/users/{user.id}/reset-password", headers=auth(admin_token))
    assert response.status_code == 200 and response.json["user"]["name"] == "alice"
    password = response.json["password"]
    assert not is_logged_in(browser)  # her session ended at once
    assert login(app.test_client(), "alice").status_code == 400
    assert login(app.test_client(), "alice", password).status_code == 302
    [event] = events(session, "user.password_reset")
    assert event.target == "alice" and password not in str(event.details)


def test_changing_my_password_through_the_api(app, client, make_user, session):
    _, token = make_user("alice", "annotator")
    browser = logged_in(app, "alice")
    url = "/api/v1/account/password"
    wrong = client.post(url, headers=auth(token), json={"current_password": "nope", "new_password": "new password 1"})
    assert wrong.status_code == 422 and wrong.json["errors"][0]["field"] == "current_password"
    short = client.post(url, headers=auth(token), json={"current_password": "correct horse", "new_password": "short"})
    assert short.status_code == 422 and short.json["errors"][0]["field"] == "new_password"
    same = client.post(url, headers=auth(token), json={"current_password": "correct horse", "new_password": "correct horse"})
    assert same.status_code == 422 and same.json["errors"][0]["field"] == "new_password"
    assert "current one" in same.json["errors"][0]["message"]
    assert is_logged_in(browser)
    done = client.post(url, headers=auth(token), json={"current_password": "correct horse",
                                                       "new_password": "new password 1"})
    assert done.status_code == 204
    assert not is_logged_in(browser)
    assert login(app.test_client(), "alice", "new password 1").status_code == 302
    assert client.get("/api/v1/tokens", headers=auth(token)).status_code == 200  # tokens stay
    assert [e.target for e in events(session, "user.password_changed")] == ["alice"]


def test_the_people_page_pages_through_every_user(client, make_user, session):
    from labeling import users as user_domain
    from labeling.db import utcnow

    make_user("boss", "admin")
    for i in range(120):
        user_domain.create_user(session, f"zz{i:03d}", "annotator", password=None, now=utcnow())
    session.commit()
    login(client, "boss")
    first = client.get("/users").get_data(as_text=True)
    assert "zz000" in first and "zz119" not in first and "?page=2" in first
    second = client.get("/users?page=2").get_data(as_text=True)
    assert "zz119" in second and "zz000" not in second and "?page=3" not in second and "?page=1" in second
    assert "No people on page 9" in client.get("/users?page=9").get_data(as_text=True)


def test_the_new_user_form_is_empty_after_a_success_and_keeps_the_name_after_an_error(client, make_user):
    make_user("boss", "admin")
    login(client, "boss")
    htmx = {"HX-Request": "true"}
    done = client.post("/users", data={"name": "ann1", "role": "reviewer", "password": "correct horse"},
                       headers=htmx).get_data(as_text=True)
    assert "Created reviewer ann1." in done and 'name="name" value=""' in done
    again = client.post("/users", data={"name": "ann1", "role": "reviewer", "password": "correct horse"},
                        headers=htmx).get_data(as_text=True)
    assert "exists already" in again and 'name="name" value="ann1"' in again
    assert '<option value="reviewer" selected>' in again and "correct horse" not in again  # never the password


def test_a_name_that_differs_only_in_case_is_refused(client, make_user, admin_token):
    make_user("ann1", "annotator")
    refused = client.post("/api/v1/users", headers=auth(admin_token), json={"name": "ANN1", "role": "admin"})
    assert refused.status_code == 409
    assert "a user named 'ann1' exists already; names that differ only in case are refused" in refused.json["error"]
    names = [u["name"] for u in client.get("/api/v1/users", headers=auth(admin_token)).json["users"]]
    assert "ANN1" not in names


def test_a_page_whose_session_ended_sends_to_the_login_page_saying_why(app, client, admin_token, make_user,
                                                                        make_project):
    project_id = make_project(examples=[{"external_id": "a", "text": "a fine film"}])
    bob, _ = make_user("bob")
    browser = logged_in(app, "bob")
    assert browser.get(f"/projects/{project_id}/label").status_code == 200
    client.patch(f"/api/v1/users/{bob.id}", headers=auth(admin_token), json={"active": False})
    page = f"/projects/{project_id}/label"
    key = browser.post(f"{page}/submit", data={"label": "pos"},
                       headers={"HX-Request": "true", "HX-Current-URL": f"http://localhost{page}"})
    assert key.status_code == 401 and key.headers["HX-Redirect"] == f"/login?next={page}"
    assert "an admin deactivated your account" in browser.get("/login").get_data(as_text=True)
    # A page opened after the session ended says it too, and leads back to that page.
    client.patch(f"/api/v1/users/{bob.id}", headers=auth(admin_token), json={"active": True})
    browser = logged_in(app, "bob")
    client.patch(f"/api/v1/users/{bob.id}", headers=auth(admin_token), json={"active": False})
    opened = browser.get(f"/projects/{project_id}/data?q=film")
    assert opened.status_code == 302 and opened.headers["Location"] == f"/login?next=/projects/{project_id}/data?q%3Dfilm"
    assert "Log in again to go on" in browser.get("/login").get_data(as_text=True)
    # Told once: a visitor who was never logged in is sent to the login page without it.
    fresh = app.test_client()
    assert fresh.get(f"/projects/{project_id}/data").status_code == 302
    assert "Your session ended" not in fresh.get("/login").get_data(as_text=True)
