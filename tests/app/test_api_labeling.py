"""The labeling API of docs/api.md: next, labels, undo, with its status codes."""

from tests.conftest import auth


def test_next_label_undo_cycle(client, make_user, make_project):
    project_id = make_project(n=2)
    _, token = make_user("ann", "annotator")
    response = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token))
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"example", "lease", "why"}
    assert set(body["example"]) == {"id", "external_id", "data"} and body["example"]["data"]["text"]
    assert body["why"]["strategy"] in ("cold_start", "holdout") and body["why"]["model_version"] is None
    response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": body["example"]["id"], "label": "pos", "lease_id": body["lease"]["id"], "idempotency_key": "v1"})
    assert response.status_code == 201
    label = response.json["label"]
    assert label["value"] == "pos" and label["annotator"] == "ann" and label["created_at"].endswith("Z")
    again = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": body["example"]["id"], "label": "neg", "idempotency_key": "v1"})
    assert again.status_code == 201 and again.json["label"]["id"] == label["id"] and again.json["label"]["value"] == "pos"
    undo = client.post(f"/api/v1/labels/{label['id']}/undo", headers=auth(token))
    assert undo.status_code == 200 and undo.json["undone_label_id"] == label["id"]
    assert client.post(f"/api/v1/labels/{label['id']}/undo", headers=auth(token)).status_code == 409


def test_next_is_204_when_nothing_is_left(client, make_user, make_project):
    project_id = make_project(n=1)
    _, one = make_user("one")
    _, two = make_user("two")
    first = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(one))
    assert first.status_code == 200
    response = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(two))
    assert response.status_code == 204 and response.data == b""


def test_labeling_an_example_leased_to_someone_else_is_409(client, make_user, make_project):
    project_id = make_project(n=1)
    _, one = make_user("one")
    _, two = make_user("two")
    example_id = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(one)).json["example"]["id"]
    response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(two),
                           json={"example_id": example_id, "label": "pos"})
    assert response.status_code == 409 and "leased to another annotator" in response.json["error"]


def test_bad_label_input_is_422_with_the_field(client, make_user, make_project):
    project_id = make_project(n=1)
    _, token = make_user("ann")
    example_id = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json["example"]["id"]
    for body, field in [({"example_id": example_id, "label": "maybe"}, "label"),
                        ({"example_id": "x", "label": "pos"}, "example_id"),
                        ({"example_id": example_id, "label": "pos", "lease_id": "x"}, "lease_id")]:
        response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json=body)
        assert response.status_code == 422 and response.json["errors"][0]["field"] == field
    response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), data="not json",
                           content_type="application/json")
    assert response.status_code == 422
    assert client.get("/api/v1/projects/999/next", headers=auth(token)).status_code == 404


def test_project_shows_counts_and_defaults(client, admin_token, make_project):
    project_id = make_project(n=3)
    body = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json
    assert body["counts"] == {"examples": 3, "labeled": 0, "labels": 0, "open_flags": 0}
    assert body["champion_model_version"] is None
    assert body["settings"]["strategy"] == "margin" and body["settings"]["retrain_threshold"] == 20
    assert body["settings"]["featurizer"] == "auto" and body["settings"]["overlap"] == 1


def test_the_labels_count_is_of_current_labels(client, admin_token, make_user, make_project):
    """Undone labels leave the count, a correction does not add one, an imported label counts."""
    project_id = make_project(n=0, examples=[{"external_id": f"e{i}", "text": f"text {i}", **({"label": "pos"} if i == 0 else {})}
                                             for i in range(4)])
    _, token = make_user("ann", "annotator")

    def count() -> dict:
        return client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["counts"]

    given = []
    for value in ("pos", "neg", "pos"):
        served = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json["example"]
        given.append(client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                                 json={"example_id": served["id"], "label": value}).json["label"])
    assert count()["labels"] == 4 and count()["labeled"] == 4
    assert client.post(f"/api/v1/labels/{given[0]['id']}/undo", headers=auth(token)).status_code == 200
    corrected = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                            json={"example_id": given[1]["example_id"], "label": "pos"})
    assert corrected.status_code == 201 and corrected.json["label"]["value"] == "pos"
    assert count() == {"examples": 4, "labeled": 3, "labels": 3, "open_flags": 0}


def test_project_settings_are_validated(client, admin_token):
    response = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": "x", "labels": ["a", "b"], "settings": {"retrain_threshold": 0, "webhook_secret": "nope", "colour": 1}})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json["errors"]}
    assert fields == {"settings.retrain_threshold", "settings.webhook_secret", "settings.colour"}
    response = client.post("/api/v1/projects", headers=auth(admin_token), json={
        "name": "y", "labels": ["a", "b"], "settings": {"webhook_url": "https://example.org/hook"}})
    assert response.status_code == 201 and response.json["settings"]["webhook_secret"].startswith("whsec_")
    shown = client.get(f"/api/v1/projects/{response.json['id']}", headers=auth(admin_token)).json
    assert shown["settings"]["webhook_secret"] == "whsec_…"


def test_only_admins_see_where_webhooks_go(client, admin_token, make_user, make_project):
    """A webhook URL can carry a token (Slack's do): others see its host only, in the API and on the page."""
    project_id = make_project(n=1, settings={"webhook_url": "https://hooks.example.org/T0/secret-part"})
    _, annotator = make_user("ann", "annotator")
    _, reviewer = make_user("rev", "reviewer")
    listed = client.get("/api/v1/projects", headers=auth(annotator)).json["projects"]
    assert [p["settings"]["webhook_url"] for p in listed] == ["https://hooks.example.org/…"]
    shown = client.get(f"/api/v1/projects/{project_id}", headers=auth(reviewer)).json
    assert shown["settings"]["webhook_url"] == "https://hooks.example.org/…"
    full = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json
    assert full["settings"]["webhook_url"] == "https://hooks.example.org/T0/secret-part"
    client.post("/login", data={"name": "rev", "password": "correct horse"})  # annotators' page shows no settings
    page = client.get(f"/projects/{project_id}").get_data(as_text=True)
    assert "hooks.example.org/…" in page and "secret-part" not in page


def test_next_and_submit_take_one_read_and_one_write_transaction(app, client, make_user, make_project):
    """The caller and the project are read together, the rest is written in one transaction: on
    SQLite (where reads run apart from the write lock) a read and a write transaction, on
    PostgreSQL one transaction. Each costs a BEGIN and a COMMIT on the hot path."""
    from sqlalchemy import event

    engine = app.extensions["hitl_engine"]
    expected = 2 if engine.dialect.name == "sqlite" else 1
    project_id = make_project(n=3)
    _, token = make_user("ann", "annotator")
    # A token's first use in an hour is recorded (last_used_at) in a short write of its own.
    assert client.get("/api/v1/tokens", headers=auth(token)).status_code == 200
    ended: list[int] = []
    event.listen(engine, "commit", lambda conn: ended.append(1))
    body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert len(ended) == expected
    ended.clear()
    response = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": body["example"]["id"], "label": "pos", "lease_id": body["lease"]["id"]})
    assert response.status_code == 201 and len(ended) == expected
    assert client.get(f"/api/v1/projects/{project_id + 1000}/next", headers=auth(token)).status_code == 404


def test_a_random_project_serves_a_random_order_from_the_start_with_no_cold_start(client, make_user, make_project,
                                                                                   session):
    from sqlalchemy import func, select

    from labeling.models import Example
    from labeling.queue import COLD_START_BAND

    random_project = make_project(n=40, settings={"strategy": "random"})
    margin_project = make_project(n=40)
    _, token = make_user("ann", "annotator")
    session.rollback()  # a fresh read: the cold-start runs committed in other sessions

    def top_priority(project_id):
        return session.scalar(select(func.max(Example.priority)).where(Example.project_id == project_id)) or 0.0

    assert top_priority(random_project) < COLD_START_BAND <= top_priority(margin_project)
    why = client.get(f"/api/v1/projects/{random_project}/next", headers=auth(token)).json["why"]
    assert why["strategy"] in ("random", "holdout") and why["model_version"] is None


def test_a_lease_that_is_not_live_is_named_in_the_conflict(client, make_user, make_project):
    project_id = make_project(n=2, settings={"holdout_fraction": 0})
    _, token = make_user("ann", "annotator")
    lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    example_id, lease_id = lease["example"]["id"], lease["lease"]["id"]
    url = f"/api/v1/projects/{project_id}/labels"
    never = client.post(url, headers=auth(token), json={"example_id": example_id, "label": "pos", "lease_id": lease_id + 999})
    assert never.status_code == 409 and f"lease {lease_id + 999} is not your current lease on this example ({lease_id} is)" in never.json["error"]
    done = client.post(url, headers=auth(token), json={"example_id": example_id, "label": "pos", "lease_id": lease_id})
    assert done.status_code == 201
    again = client.post(url, headers=auth(token), json={"example_id": example_id, "label": "neg", "lease_id": lease_id})
    assert again.status_code == 409 and f"lease {lease_id} is not a live lease on this example" in again.json["error"]
