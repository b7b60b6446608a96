"""API tokens through the API: mine (an admin: anyone's), created once, revoked, expired."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from labeling.db import utcnow
from labeling.models import ApiToken, AuditEvent
from tests.conftest import auth


def test_a_token_is_created_once_listed_without_its_secret_and_works(client, make_user, session):
    _, token = make_user("alice", "annotator")
    response = client.post("/api/v1/tokens", headers=auth(token), json={"name": "nightly", "expires_in_days": 30})
    assert response.status_code == 201
    body = response.json
    assert body["token"].startswith("hitl_") and body["name"] == "nightly" and body["last_used_at"] is None
    assert body["expires_at"] > body["created_at"]
    listed = client.get("/api/v1/tokens", headers=auth(body["token"])).json["tokens"]
    assert [t["name"] for t in listed] == ["", "nightly"]
    assert all("token" not in t for t in listed) and set(listed[1]) >= {"id", "name", "created_at", "expires_at", "last_used_at"}
    assert listed[1]["last_used_at"] is not None  # the listing itself used it
    session.rollback()
    stored = session.scalar(select(ApiToken.token_hash).where(ApiToken.id == body["id"]))
    assert body["token"] not in stored and len(stored) == 64
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "token.created"))
    assert (event.actor_name, event.target, event.details["name"]) == ("alice", str(body["id"]), "nightly")
    assert client.post("/api/v1/tokens", headers=auth(token), json={}).status_code == 201  # every field optional


def test_my_tokens_come_a_page_at_a_time(client, make_user):
    _, token = make_user("alice", "annotator")
    for name in ("a", "b", "c"):
        client.post("/api/v1/tokens", headers=auth(token), json={"name": name})
    page = client.get("/api/v1/tokens?limit=2&offset=1", headers=auth(token)).json
    assert [t["name"] for t in page["tokens"]] == ["a", "b"] and (page["limit"], page["offset"]) == (2, 1)
    bad = client.get("/api/v1/tokens?limit=0", headers=auth(token))
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "limit"


@pytest.mark.parametrize("body,field", [
    ({"nme": "typo"}, "nme"), ({"expires_in_days": 0}, "expires_in_days"), ({"expires_in_days": 3651}, "expires_in_days"),
    ({"expires_in_days": "7"}, "expires_in_days"), ({"expires_in_days": True}, "expires_in_days"),
    ({"expires_in_days": 1.5}, "expires_in_days"), ({"name": "x" * 81}, "name"), ({"name": 3}, "name"),
])
def test_bad_token_fields_are_a_422_naming_the_field(client, make_user, body, field):
    _, token = make_user("alice", "annotator")
    response = client.post("/api/v1/tokens", headers=auth(token), json=body)
    assert response.status_code == 422 and response.json["errors"][0]["field"] == field


def test_a_revoked_token_is_refused_on_its_next_request(client, make_user, session):
    _, token = make_user("alice", "annotator")
    spare = client.post("/api/v1/tokens", headers=auth(token), json={"name": "spare"}).json
    assert client.get("/api/v1/projects", headers=auth(spare["token"])).status_code == 200
    assert client.delete(f"/api/v1/tokens/{spare['id']}", headers=auth(token)).status_code == 204
    refused = client.get("/api/v1/projects", headers=auth(spare["token"]))
    assert refused.status_code == 401 and "revoked" in refused.json["error"]
    assert client.delete(f"/api/v1/tokens/{spare['id']}", headers=auth(token)).status_code == 404
    session.rollback()
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "token.revoked"))
    assert (event.actor_name, event.target, event.details) == ("alice", str(spare["id"]), {"user": "alice", "name": "spare"})


def test_someone_elses_token_is_a_404_except_for_an_admin(client, make_user, admin_token):
    _, alice = make_user("alice", "annotator")
    _, bob = make_user("bob", "reviewer")
    bobs = client.get("/api/v1/tokens", headers=auth(bob)).json["tokens"][0]["id"]
    assert client.delete(f"/api/v1/tokens/{bobs}", headers=auth(alice)).status_code == 404
    assert client.get("/api/v1/projects", headers=auth(bob)).status_code == 200
    assert client.get("/api/v1/tokens?user=bob", headers=auth(alice)).status_code == 403
    assert client.get("/api/v1/tokens?user=alice", headers=auth(alice)).status_code == 200  # naming oneself is fine
    listed = client.get("/api/v1/tokens?user=bob", headers=auth(admin_token))
    assert listed.status_code == 200 and [t["id"] for t in listed.json["tokens"]] == [bobs]
    assert client.get("/api/v1/tokens?user=nobody", headers=auth(admin_token)).status_code == 404
    assert client.delete(f"/api/v1/tokens/{bobs}", headers=auth(admin_token)).status_code == 204
    assert client.get("/api/v1/projects", headers=auth(bob)).status_code == 401


def test_an_expired_token_is_refused_on_its_next_request(client, make_user, session):
    _, token = make_user("alice", "annotator")
    short = client.post("/api/v1/tokens", headers=auth(token), json={"expires_in_days": 1}).json
    assert client.get("/api/v1/projects", headers=auth(short["token"])).status_code == 200
    session.execute(update(ApiToken).where(ApiToken.id == short["id"]).values(expires_at=utcnow() - timedelta(seconds=1)))
    session.commit()
    refused = client.get("/api/v1/projects", headers=auth(short["token"]))
    assert refused.status_code == 401 and "expired" in refused.json["error"]
    assert client.get("/api/v1/projects", headers=auth(token)).status_code == 200  # the others still work


def test_last_used_is_written_at_most_once_an_hour(app, client, make_user, session):
    from sqlalchemy import event

    _, token = make_user("alice", "annotator")
    commits: list[int] = []
    event.listen(app.extensions["hitl_engine"], "commit", lambda conn: commits.append(1))
    client.get("/api/v1/tokens", headers=auth(token))
    first = len(commits)
    client.get("/api/v1/tokens", headers=auth(token))
    assert len(commits) - first < first  # the second request wrote no last_used_at
    session.rollback()
    used = session.scalar(select(ApiToken.last_used_at))
    assert used is not None and utcnow() - used < timedelta(minutes=1)
