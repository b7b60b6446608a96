"""Signed webhooks to a real HTTP receiver on 127.0.0.1, verified with the standardwebhooks
library (an independent implementation of the Standard Webhooks algorithm)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from labeling.db import utcnow
from labeling.webhooks import deliver_due
from tests.conftest import auth


class Receiver:
    """Records every POST; answers ``status`` (503 while 'down')."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.location = ""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, secret: str) -> list[dict]:
        """Every request that verifies; raises if one does not."""
        return [Webhook(secret).verify(body, headers) for headers, body in self.requests]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def create_project(client, token, receiver, threshold=5, n=30, labeled=0):
    response = client.post("/api/v1/projects", headers=auth(token), json={
        "name": "hooked", "labels": ["pos", "neg"],
        "settings": {"retrain_threshold": threshold, "webhook_url": receiver.url, "holdout_fraction": 0}})
    project = response.json
    rows = [{"external_id": str(i), "text": f"{'good' if i % 2 else 'bad'} film {i}",
             **({"label": "pos" if i % 2 else "neg"} if i < labeled else {})} for i in range(n)]
    assert client.post(f"/api/v1/projects/{project['id']}/examples", headers=auth(token), json={"examples": rows}).status_code == 201
    return project["id"], project["settings"]["webhook_secret"]


def label_some(client, token, project_id, k):
    for i in range(k):
        lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        label = "pos" if i % 2 else "neg"  # both classes, so the run trains a model
        assert client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                           json={"example_id": lease["example"]["id"], "label": label}).status_code == 201


def test_crossing_the_threshold_sends_one_signed_event(client, admin_token, receiver):
    project_id, secret = create_project(client, admin_token, receiver)
    label_some(client, admin_token, project_id, 7)
    events = receiver.events(secret)
    kinds = [e["type"] for e in events]
    assert kinds.count("labels.threshold_reached") == 1
    threshold = next(e for e in events if e["type"] == "labels.threshold_reached")["data"]
    number = threshold["snapshot"]  # snapshot 1 is the cold-start run's after the import
    assert threshold["new_labels"] == 5 and number == 2 and threshold["labels"] == 5
    assert threshold["export_url"].endswith(f"/api/v1/projects/{project_id}/export?format=jsonl&snapshot={number}")
    trained = next(e for e in events if e["type"] == "model.trained")["data"]
    assert trained["model_version"] == 1 and trained["promoted"] is True
    runs = client.get(f"/api/v1/projects/{project_id}/runs", headers=auth(admin_token)).json["runs"]
    assert [r["trigger"] for r in runs].count("threshold") == 1
    # The frozen snapshot exports exactly what the event announced.
    export = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl&snapshot={number}", headers=auth(admin_token))
    assert len(export.data.decode().splitlines()) == 5


def test_the_labels_since_the_mark_are_counted_up_to_what_the_check_needs(client, admin_token, receiver, session):
    """Each submit counts at most the threshold's worth of labels; the event counts them all."""
    from labeling.models import Project
    from labeling.runs import new_labels_since_mark

    project_id, _ = create_project(client, admin_token, receiver, threshold=100)
    label_some(client, admin_token, project_id, 8)
    project = session.get(Project, project_id)
    assert new_labels_since_mark(session, project, most=5) == 5
    assert new_labels_since_mark(session, project) == 8


def test_a_bulk_import_past_the_threshold_triggers(client, admin_token, receiver):
    project_id, secret = create_project(client, admin_token, receiver, threshold=5, n=40, labeled=12)
    kinds = [e["type"] for e in receiver.events(secret)]
    assert kinds.count("labels.threshold_reached") == 1 and "model.trained" in kinds


def test_a_receiver_that_is_down_gets_every_event_once_it_is_back(app, client, admin_token, receiver):
    receiver.status = 503
    project_id, secret = create_project(client, admin_token, receiver)
    label_some(client, admin_token, project_id, 5)
    failed = len(receiver.requests)
    assert failed >= 2  # both events were tried and refused
    deliveries = client.get(f"/api/v1/projects/{project_id}/webhook-deliveries", headers=auth(admin_token)).json["deliveries"]
    assert {d["status"] for d in deliveries} == {"pending"} and all(d["last_status_code"] == 503 for d in deliveries)
    receiver.status = 200
    assert deliver_due(app.extensions["hitl_sessionmaker"], clock=utcnow) == 0  # backoff: not due yet
    later = utcnow() + timedelta(minutes=5)
    assert deliver_due(app.extensions["hitl_sessionmaker"], clock=lambda: later) == len(deliveries)
    delivered = [Webhook(secret).verify(body, headers) for headers, body in receiver.requests[failed:]]
    assert sorted(e["type"] for e in delivered) == sorted(d["event"] for d in deliveries)
    statuses = client.get(f"/api/v1/projects/{project_id}/webhook-deliveries?status=delivered", headers=auth(admin_token)).json
    assert len(statuses["deliveries"]) == len(deliveries) and all(d["attempts"] == 2 for d in statuses["deliveries"])
    # Redeliver: the same message id, signed again.
    first = statuses["deliveries"][0]
    assert client.post(f"/api/v1/webhook-deliveries/{first['id']}/redeliver", headers=auth(admin_token)).status_code == 202
    headers, body = receiver.requests[-1]
    assert headers["webhook-id"] == first["msg_id"] and Webhook(secret).verify(body, headers)


def test_a_tampered_body_fails_verification(client, admin_token, receiver):
    project_id, secret = create_project(client, admin_token, receiver)
    label_some(client, admin_token, project_id, 5)
    headers, body = receiver.requests[0]
    tampered = body.replace(b'"new_labels":5', b'"new_labels":6')
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 40).verify(body, headers)


def test_the_receiver_code_in_the_api_docs_verifies_a_delivery(client, admin_token, receiver):
    """docs/api.md shows receivers how to check a signature; that code must accept ours."""
    import re
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    code = re.search(r"## Webhooks\n.*?```python\n(.*?)```", docs, re.S).group(1)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the repository's own documentation
    project_id, secret = create_project(client, admin_token, receiver)
    label_some(client, admin_token, project_id, 5)
    headers, body = receiver.requests[0]
    assert namespace["verified"](secret, headers, body)
    assert not namespace["verified"](secret, headers, body.replace(b'"new_labels":5', b'"new_labels":6'))


def test_webhook_urls_must_be_http(client, admin_token):
    response = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": "x", "labels": ["a", "b"], "settings": {"webhook_url": "file:///etc/passwd"}})
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "settings.webhook_url"



@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://localhost/hook", "http://169.254.169.254/latest",
                                 "http://10.1.2.3/hook", "https://[::1]/hook", "http://[::ffff:192.168.0.1]/x"])
def test_private_webhook_urls_are_refused_unless_allowed(app_factory, make_user, url):
    client = app_factory(WEBHOOK_ALLOW_PRIVATE=False).test_client()
    _, token = make_user("boss", "admin")
    response = client.post("/api/v1/projects", headers=auth(token), json={
        "name": "x", "labels": ["a", "b"], "settings": {"webhook_url": url}})
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "settings.webhook_url"
    assert "LABELING_WEBHOOK_ALLOW_PRIVATE" in response.json["errors"][0]["message"]


def _hooked_project(client, token, receiver_url, before_import=lambda: None):
    """A project whose one imported label crosses the threshold, which sends an event."""
    project = client.post("/api/v1/projects", headers=auth(token), json={
        "name": f"hooked-{uuid.uuid4().hex[:6]}", "labels": ["pos", "neg"],
        "settings": {"webhook_url": receiver_url, "retrain_threshold": 1}})
    assert project.status_code == 201, project.json
    before_import()
    rows = [{"external_id": "1", "text": "good", "label": "pos"}]
    response = client.post(f"/api/v1/projects/{project.json['id']}/examples", headers=auth(token), json={"examples": rows})
    assert response.status_code == 201
    return project.json["id"]


def _first_delivery(app, project_id):
    from labeling.models import WebhookDelivery

    maker = app.extensions["hitl_sessionmaker"]
    deliver_due(maker, clock=lambda: utcnow() + timedelta(hours=1))
    with maker() as session:
        return session.query(WebhookDelivery).filter_by(project_id=project_id).order_by(WebhookDelivery.id).first()


def test_a_delivery_never_reaches_a_private_address_when_they_are_not_allowed(app, client, admin_token, receiver):
    from labeling import outbound

    def turn_off():  # as after a restart with the setting turned off, once the URL was saved
        outbound.private_addresses_allowed = False

    try:
        delivery = _first_delivery(app, _hooked_project(client, admin_token, receiver.url, turn_off))
    finally:
        outbound.private_addresses_allowed = True
    assert receiver.requests == [] and delivery.status == "pending"
    assert "private address" in delivery.last_error


def test_redirects_are_not_followed(client, app, admin_token, receiver):
    target = Receiver()
    try:
        receiver.status, receiver.location = 307, target.url
        delivery = _first_delivery(app, _hooked_project(client, admin_token, receiver.url))
        assert receiver.requests and target.requests == []
        assert delivery.last_status_code == 307 and "redirect" in delivery.last_error
    finally:
        target.server.shutdown()


def test_delivery_errors_do_not_tell_a_closed_port_from_an_open_one(client, app, admin_token):
    import socket

    from labeling import webhooks

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()  # open, accepts, never answers HTTP
    webhooks.TIMEOUT, saved = 0.5, webhooks.TIMEOUT
    try:
        errors = [_first_delivery(app, _hooked_project(client, admin_token, f"http://127.0.0.1:{s.getsockname()[1]}/")).last_error
                  for s in (closed, silent)]
    finally:
        webhooks.TIMEOUT = saved
        closed.close()
        silent.close()
    assert errors[0] == errors[1] and "no HTTP response" in errors[0]
