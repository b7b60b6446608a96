"""Logins, tokens, CSRF and rate limiting."""

from sqlalchemy import select

from labeling.models import ApiToken, User
from tests.conftest import auth


def login(client, name, password):
    return client.post("/login", data={"name": name, "password": password})


def test_login_and_logout(client, make_user):
    make_user("alice", "admin")
    response = login(client, "alice", "correct horse")
    assert response.status_code == 302 and response.location.endswith("/")
    assert b"alice" in client.get("/").data
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_the_login_page_says_who_is_logged_in_already(client, make_user):
    make_user("alice", "admin")
    assert b"You are logged in as" not in client.get("/login").data
    login(client, "alice", "correct horse")
    page = client.get("/login").data.decode()
    assert "You are logged in as alice." in page and 'name="password"' in page


def test_wrong_password_is_refused_with_a_message(client, make_user):
    make_user("alice", "admin")
    response = login(client, "alice", "wrong password")
    assert response.status_code == 400
    assert b"Wrong user name or password" in response.data
    assert client.get("/").status_code == 302


def test_login_rejects_an_offsite_next(client, make_user):
    make_user("alice", "admin")
    response = client.post("/login?next=https://evil.example/", data={"name": "alice", "password": "correct horse"})
    assert response.location == "/"


def test_passwords_and_tokens_are_stored_hashed(app, make_user, session):
    _, token = make_user("alice", "admin")
    user = session.scalar(select(User).where(User.name == "alice"))
    assert "correct horse" not in user.password_hash and user.password_hash.startswith("scrypt$")
    stored = session.scalar(select(ApiToken.token_hash))
    assert token not in stored and len(stored) == 64


def test_forms_need_a_csrf_token(app_factory, make_user):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    response = client.post("/login", data={"name": "x", "password": "y"})
    assert response.status_code == 400
    assert b"form expired" in response.data


def test_login_failures_are_counted_across_workers_per_account_and_address(app_factory, make_user):
    make_user("alice", "annotator")
    make_user("bob", "annotator")
    workers = [app_factory().test_client(), app_factory().test_client()]  # two processes, one database
    codes = [login(workers[i % 2], "alice", "wrong").status_code for i in range(6)]
    assert codes == [400] * 5 + [429]
    refused = login(workers[0], "alice", "correct horse")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert login(workers[1], "bob", "correct horse").status_code == 302  # same address, another account
    elsewhere = workers[0].post("/login", data={"name": "alice", "password": "correct horse"},
                                environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert elsewhere.status_code == 302  # an attacker's failures do not lock alice out


def test_an_address_that_guesses_many_accounts_is_stopped(app_factory):
    client = app_factory(LOGIN_FAILURES_PER_ADDRESS=4).test_client()
    codes = [login(client, f"user{i}", "guess").status_code for i in range(5)]
    assert codes == [400] * 4 + [429]


def test_the_client_address_comes_from_trusted_proxies_only(app_factory):
    direct = app_factory(LOGIN_FAILURES_PER_ACCOUNT=1).test_client()
    behind = app_factory(LOGIN_FAILURES_PER_ACCOUNT=1, TRUSTED_PROXIES=1).test_client()

    def attempt(client, forwarded):
        return client.post("/login", data={"name": "carol", "password": "x"},
                           headers={"X-Forwarded-For": forwarded}).status_code

    assert attempt(behind, "203.0.113.1") == 400 and attempt(behind, "203.0.113.1") == 429
    assert attempt(behind, "203.0.113.2") == 400  # another client behind the same proxy
    assert attempt(direct, "198.51.100.1") == 400
    assert attempt(direct, "198.51.100.2") == 429  # the header is not trusted: one address, the connection's


def test_session_cookie_is_httponly_and_samesite(client, make_user):
    make_user("alice", "admin")
    response = login(client, "alice", "correct horse")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_token_page_shows_a_new_token_once(client, make_user):
    make_user("alice", "annotator")
    login(client, "alice", "correct horse")
    created = client.post("/account/tokens", data={"name": "script"})
    assert created.status_code == 303 and created.headers["Location"].endswith("/account/tokens")  # no re-POST on reload
    cookie = next(c for c in created.headers.getlist("Set-Cookie") if c.startswith("session="))
    shown = client.get("/account/tokens")
    assert shown.headers["Cache-Control"] == "no-store"
    assert "Your new token “script”" in shown.get_data(as_text=True)
    token = shown.get_data(as_text=True).split('data-testid="new-token">')[1].split("<")[0]
    assert client.get("/api/v1/projects", headers=auth(token)).status_code == 200
    page = client.get("/account/tokens").get_data(as_text=True)
    assert token not in page
    assert '<select name="expires_in_days"><option value="90">in 90 days</option>' in page  # the default is not "never"
    sealed = client.application.session_interface.get_signing_serializer(client.application).loads(
        cookie.split("=", 1)[1].split(";", 1)[0])
    assert token not in repr(sealed) and token[-12:] not in repr(sealed)  # the signed cookie is readable: sealed


def test_a_token_name_too_long_is_refused_not_cut(client, make_user):
    make_user("alice", "annotator")
    login(client, "alice", "correct horse")
    refused = client.post("/account/tokens", data={"name": "n" * 81})
    assert refused.status_code == 422 and "name must be text of at most 80 characters" in refused.get_data(as_text=True)
    assert f'value="{"n" * 81}"' in refused.get_data(as_text=True)  # what was typed stays, to shorten
    assert "n" * 80 not in client.get("/account/tokens").get_data(as_text=True)  # no token made under a cut name
    assert client.post("/account/tokens", data={"name": "n" * 80}).status_code == 303


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json["database"] == "ok"


def test_healthz_fails_when_the_database_is_unreachable(app_factory):
    app = app_factory(DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
