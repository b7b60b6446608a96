"""Archiving (read-only, hidden from annotators, still exportable) and deleting a project with
everything of it, in one transaction and set-based statements, with the foreign keys on."""

import pytest
from sqlalchemy import event, func, select

from labeling import quality
from labeling.db import utcnow
from labeling.models import (AuditEvent, Base, Example, ImportJob, Label, LabelFlag, ModelVersion, Project, RetrainRun, Skip,
                             Snapshot, User, WebhookDelivery)
from tests.conftest import auth


def patch(client, token, project_id, body):
    return client.patch(f"/api/v1/projects/{project_id}", headers=auth(token), json=body)


def listed(client, token):
    return {p["id"] for p in client.get("/api/v1/projects", headers=auth(token)).json["projects"]}


def actions(session, project_id):
    session.rollback()
    return [e.action for e in session.scalars(select(AuditEvent).where(AuditEvent.project_id == project_id)
                                              .order_by(AuditEvent.id))]


def test_an_archived_project_is_read_only_hidden_from_annotators_and_still_exportable(
        client, admin_token, make_user, make_project, session):
    project_id = make_project(examples=[{"external_id": f"e{i}", "text": f"review number {i}",
                                         **({"label": "pos"} if i < 2 else {})}
                                        for i in range(6)])
    _, ann = make_user("ann", "annotator")
    _, rev = make_user("rev", "reviewer")
    served = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(ann)).json

    response = patch(client, admin_token, project_id, {"archived": True})
    assert response.status_code == 200 and response.json["archived"] is True and response.json["archived_at"]
    assert project_id not in listed(client, ann)
    assert project_id in listed(client, rev) and project_id in listed(client, admin_token)
    refused = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(ann))
    assert refused.status_code == 409 and "archived" in refused.json["error"]
    labeled = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(ann),
                          json={"example_id": served["example"]["id"], "label": "pos", "lease_id": served["lease"]["id"]})
    assert labeled.status_code == 409 and "read-only" in labeled.json["error"]
    imported = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                           json={"examples": [{"external_id": "new", "text": "new"}]})
    assert imported.status_code == 409 and "archived" in imported.json["error"]
    assert client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).status_code == 409
    exported = client.get(f"/api/v1/projects/{project_id}/export?format=jsonl", headers=auth(admin_token))
    assert exported.status_code == 200 and exported.get_data(as_text=True).count("\n") == 2
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(rev)).json["archived"] is True

    assert patch(client, admin_token, project_id, {"archived": False}).json["archived"] is False
    assert project_id in listed(client, ann)
    assert client.get(f"/api/v1/projects/{project_id}/next", headers=auth(ann)).status_code == 200
    assert actions(session, project_id)[-3:] == ["project.archived", "export.downloaded", "project.unarchived"]


def test_patch_names_a_bad_field(client, admin_token, make_project):
    project_id = make_project(n=1)
    bad = patch(client, admin_token, project_id, {"archived": "yes"})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "archived"
    unknown = patch(client, admin_token, project_id, {"labels": ["a", "b"]})  # labels are added, never replaced
    assert unknown.status_code == 422 and unknown.json["errors"][0]["field"] == "labels"
    nameless = patch(client, admin_token, project_id, {"name": "  "})
    assert nameless.status_code == 422 and nameless.json["errors"][0]["field"] == "name"


def _full_project(app, client, token, make_project, n=12):
    """A project with something in every table a project owns."""
    project_id = make_project(examples=[{"external_id": f"e{i}", "text": f"review {i} {'good' if i % 2 else 'bad'}",
                                         **({"label": "pos" if i % 2 else "neg"} if i < 8 else {})} for i in range(n)],
                              settings={"webhook_url": "http://127.0.0.1:9/hook", "retrain_threshold": 1})
    client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(token))     # a run and a model (inline jobs)
    client.post(f"/api/v1/projects/{project_id}/snapshots", headers=auth(token))
    served = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    label = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": served["example"]["id"], "label": "pos"}).json["label"]    # a threshold run and a delivery
    client.post(f"/api/v1/labels/{label['id']}/undo", headers=auth(token))       # a label that replaces another
    with app.extensions["hitl_sessionmaker"]() as s:
        admin = s.scalar(select(User).where(User.name == "admin"))
        first = s.scalar(select(Label).where(Label.project_id == project_id, Label.value.is_not(None))
                         .order_by(Label.id).limit(1))  # an imported label: the one given above was undone
        flag = LabelFlag(project_id=project_id, label_id=first.id, example_id=first.example_id, given=first.value,
                         suggested="neg", score=0.99, reason="model_disagrees", status="open", created_at=utcnow())
        s.add_all([flag, Skip(example_id=first.example_id, user_id=admin.id, created_at=utcnow())])
        s.commit()
        quality.resolve_flag(s, flag.id, admin, "correct", "neg", now=utcnow())  # a flag pointing at a new label
        s.commit()
    return project_id


OWNED = (Example, Label, LabelFlag, ModelVersion, RetrainRun, Snapshot, WebhookDelivery, ImportJob)


def counts(session, project_id):
    session.rollback()
    return {t.__tablename__: session.scalar(select(func.count()).select_from(t).where(t.project_id == project_id))
            for t in OWNED}


def test_delete_needs_the_name_then_removes_everything_and_keeps_the_audit_trail(app, client, admin_token, make_project,
                                                                                session):
    project_id = _full_project(app, client, admin_token, make_project)
    other_id = make_project(n=3)
    before = counts(session, project_id)
    assert all(before[t] > 0 for t in before), before
    other_before = counts(session, other_id)
    name = session.get(Project, project_id).name

    for query, message in (("", "type the project's name"), ("?confirm=nope", "does not match")):
        refused = client.delete(f"/api/v1/projects/{project_id}{query}", headers=auth(admin_token))
        assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "confirm", refused.json
        assert message in refused.json["errors"][0]["message"]
    assert counts(session, project_id) == before

    deleted = client.delete(f"/api/v1/projects/{project_id}", query_string={"confirm": name}, headers=auth(admin_token))
    assert deleted.status_code == 204 and deleted.get_data() == b""
    assert client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).status_code == 404
    assert set(counts(session, project_id).values()) == {0}
    assert counts(session, other_id) == other_before
    trail = session.scalars(select(AuditEvent).where(AuditEvent.project_id == project_id).order_by(AuditEvent.id)).all()
    assert trail[0].action == "project.created" and trail[-1].action == "project.deleted"
    assert trail[-1].details["name"] == name and trail[-1].details["examples"] == 12
    assert trail[-1].details["labels"] == before["labels"]


@pytest.mark.parametrize("role", ["reviewer", "annotator"])
def test_only_admins_delete_or_archive(client, make_user, make_project, role):
    project_id = make_project(n=1)
    _, token = make_user("someone", role)
    assert client.delete(f"/api/v1/projects/{project_id}?confirm=x", headers=auth(token)).status_code == 403
    assert patch(client, token, project_id, {"archived": True}).status_code == 403


def test_delete_is_a_fixed_number_of_statements_whatever_the_size(app, client, admin_token, make_project, session):
    """Set-based: the same statements for 10 examples as for 3,000 (no row-by-row deletes)."""
    engine = app.extensions["hitl_engine"]
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("DELETE", "UPDATE")):
            seen.append(statement.split()[0].upper() + " " + ("many" if executemany else "one"))

    sizes = {}
    for n in (10, 3000):
        rows = [{"external_id": f"e{i}", "text": f"review number {i}", **({"label": "pos" if i % 2 else "neg"} if i % 3 else {})}
                for i in range(n)]
        project_id = make_project(examples=rows)
        name = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["name"]
        seen.clear()
        event.listen(engine, "before_cursor_execute", count)
        try:
            response = client.delete(f"/api/v1/projects/{project_id}", query_string={"confirm": name},
                                     headers=auth(admin_token))
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert response.status_code == 204
        sizes[n] = list(seen)
        assert counts(session, project_id)["examples"] == 0
    assert sizes[10] == sizes[3000] and len(sizes[10]) <= 20 and "DELETE many" not in sizes[10]


def test_every_table_of_a_project_is_covered_by_the_delete():
    """A new table with a project_id (or hanging off one) must join labeling/deletion.py."""
    from labeling.deletion import _statements

    covered = {s.table.name for _, s in _statements(1)}
    owned = {t.name for t in Base.metadata.sorted_tables
             if "project_id" in t.c or any(fk.column.table.name in covered - {"projects"} for fk in t.foreign_keys)}
    assert owned - {"audit_events"} <= covered, owned - covered


def test_a_typed_projects_address_leads_to_the_project_list(app, make_user):
    from tests.app.test_people import logged_in
    make_user("ann", "annotator")
    ann = logged_in(app, "ann")
    answer = ann.get("/projects?page=2")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/?page=2")
    assert app.test_client().get("/projects").headers["Location"] == "/login?next=/projects"  # the login first
