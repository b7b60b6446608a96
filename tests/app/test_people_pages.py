"""The people page (admin) and the account pages, as a browser without JavaScript and as htmx
uses them."""

import re

from sqlalchemy import select

from labeling.models import AuditEvent, User
from tests.app.test_people import is_logged_in, logged_in, login
from tests.conftest import auth

HTMX = {"HX-Request": "true"}


def user_id(session, name):
    session.rollback()
    return session.scalar(select(User.id).where(User.name == name))


def test_the_people_page_is_for_admins_and_every_form_carries_a_csrf_token(app_factory, make_user):
    app = app_factory(WTF_CSRF_ENABLED=True)
    make_user("boss", "admin")
    make_user("ann", "annotator")
    client = app.test_client()
    login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', login_page).group(1)
    client.post("/login", data={"name": "boss", "password": "correct horse", "csrf_token": token})
    page = client.get("/users").get_data(as_text=True)
    forms = page.count("<form")
    assert forms >= 8 and page.count('name="csrf_token"') == forms  # logout, new user, 3 per user
    assert "hx-confirm=\"Deactivate ann?" in page and "Reset password" in page
    refused = client.post("/users", data={"name": "eve", "role": "annotator", "password": "long enough"})
    assert refused.status_code == 400  # no CSRF token
    annotator = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', annotator.get("/login").get_data(as_text=True)).group(1)
    annotator.post("/login", data={"name": "ann", "password": "correct horse", "csrf_token": token})
    assert annotator.get("/users").status_code == 403
    assert annotator.get("/audit").status_code == 403
    assert "People" not in annotator.get("/").get_data(as_text=True)


def test_an_admin_creates_a_user_changes_the_role_deactivates_and_resets_the_password(app, make_user, session):
    make_user("boss", "admin")
    admin = logged_in(app, "boss")
    created = admin.post("/users", data={"name": "carol", "role": "reviewer", "password": ""}, headers=HTMX)
    body = created.get_data(as_text=True)
    assert created.status_code == 200 and "<html" not in body and "Created reviewer carol" in body
    password = re.search(r'data-testid="password">([^<]+)<', body).group(1)
    carol = logged_in(app, "carol", password)  # the generated password, shown once
    assert password not in admin.get("/users").get_data(as_text=True)
    carol_id = user_id(session, "carol")
    changed = admin.post(f"/users/{carol_id}/role", data={"role": "annotator"}, headers=HTMX).get_data(as_text=True)
    assert "carol is now annotator" in changed
    reset = admin.post(f"/users/{carol_id}/password", headers=HTMX).get_data(as_text=True)
    new_password = re.search(r'data-testid="password">([^<]+)<', reset).group(1)
    assert new_password != password and not is_logged_in(carol)
    assert login(app.test_client(), "carol", password).status_code == 400
    carol = logged_in(app, "carol", new_password)
    off = admin.post(f"/users/{carol_id}/active", data={"active": "0"}, follow_redirects=True).get_data(as_text=True)
    assert "<html" in off and "carol is deactivated" in off and "Reactivate" in off
    assert not is_logged_in(carol)
    on = admin.post(f"/users/{carol_id}/active", data={"active": "1"}, headers=HTMX).get_data(as_text=True)
    assert "carol is active again" in on
    session.rollback()
    actions = session.scalars(select(AuditEvent.action).where(AuditEvent.target == "carol").order_by(AuditEvent.id)).all()
    assert actions == ["user.created", "user.role_changed", "user.password_reset", "user.deactivated", "user.reactivated"]


def test_without_htmx_a_change_redirects_to_the_page_that_shows_its_outcome_once(app, make_user, session):
    make_user("boss", "admin")
    make_user("dana", "annotator")
    admin = logged_in(app, "boss")
    reset = admin.post(f"/users/{user_id(session, 'dana')}/password")
    assert reset.status_code == 303 and reset.headers["Location"].endswith("/users")  # a reload GETs the page
    page = admin.get("/users")
    body = page.get_data(as_text=True)
    password = re.search(r'data-testid="password">([^<]+)<', body).group(1)
    assert "New password for dana." in body and page.headers["Cache-Control"] == "no-store"
    assert login(app.test_client(), "dana", password).status_code == 302  # the one shown is dana's
    again = admin.get("/users").get_data(as_text=True)
    assert password not in again and "New password for dana." not in again  # shown once
    created = admin.post("/users", data={"name": "erin", "role": "reviewer", "password": ""})
    assert created.status_code == 303
    body = admin.get("/users").get_data(as_text=True)
    assert "Created reviewer erin." in body and 'data-testid="password"' in body
    assert 'data-testid="password"' not in admin.get("/users").get_data(as_text=True)


def test_the_page_shows_why_a_change_was_refused(app, make_user, session):
    make_user("boss", "admin")
    admin = logged_in(app, "boss")
    boss_id = user_id(session, "boss")
    refused = admin.post(f"/users/{boss_id}/active", data={"active": "0"})
    assert refused.status_code == 409 and "last active admin" in refused.get_data(as_text=True)
    in_htmx = admin.post(f"/users/{boss_id}/role", data={"role": "annotator"}, headers=HTMX)
    assert in_htmx.status_code == 200 and "last active admin" in in_htmx.get_data(as_text=True)  # htmx swaps 200s only
    bad = admin.post("/users", data={"name": "<script>", "role": "annotator", "password": "long enough"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "field &#39;name&#39;" in page and "<script>" not in page
    assert is_logged_in(admin)


def test_the_tokens_page_lists_and_revokes_my_tokens(app, client, make_user, session):
    make_user("alice", "annotator")  # with one token from the fixture
    browser = logged_in(app, "alice")
    created = browser.post("/account/tokens", data={"name": "nightly", "expires_in_days": "30"},
                           follow_redirects=True).get_data(as_text=True)
    secret = re.search(r'data-testid="new-token">([^<]+)<', created).group(1)
    assert client.get("/api/v1/tokens", headers=auth(secret)).status_code == 200
    page = browser.get("/account/tokens").get_data(as_text=True)
    assert secret not in page
    row = page.split("nightly", 1)[1].split("</tr>", 1)[0]
    assert "UTC" in row and "never" not in row and "hx-confirm=\"Revoke the token nightly?" in row
    session.rollback()
    token_id = client.get("/api/v1/tokens", headers=auth(secret)).json["tokens"][-1]["id"]
    revoked = browser.post(f"/account/tokens/{token_id}/revoke", follow_redirects=True).get_data(as_text=True)
    assert "Token &#39;nightly&#39; revoked" in revoked
    assert client.get("/api/v1/tokens", headers=auth(secret)).status_code == 401
    bad = browser.post("/account/tokens", data={"name": "x", "expires_in_days": "0"})
    assert bad.status_code == 422 and "expires_in_days" in bad.get_data(as_text=True)


def test_the_tokens_page_revokes_only_my_own_tokens_even_for_an_admin(app, client, make_user):
    _, ann_token = make_user("ann", "annotator")
    make_user("boss", "admin")
    ann_token_id = client.get("/api/v1/tokens", headers=auth(ann_token)).json["tokens"][0]["id"]
    admin = logged_in(app, "boss")
    assert admin.post(f"/account/tokens/{ann_token_id}/revoke").status_code == 404
    other = logged_in(app, "ann")
    boss_token_id = ann_token_id + 1
    assert other.post(f"/account/tokens/{boss_token_id}/revoke").status_code == 404
    assert client.get("/api/v1/projects", headers=auth(ann_token)).status_code == 200
