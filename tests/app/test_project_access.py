"""Project members: a project with members is seen only by them (with their role there) and by
admins; anyone else gets a 404 on its routes (API and pages) and does not find it in lists."""

import re

from sqlalchemy import select

from labeling.db import utcnow
from labeling.models import AuditEvent, Example, LabelFlag
from tests.app.test_people import logged_in
from tests.conftest import auth


def put_members(client, token, project_id, members):
    return client.put(f"/api/v1/projects/{project_id}/members", headers=auth(token), json={"members": members})


def listed(client, token):
    response = client.get("/api/v1/projects", headers=auth(token))
    assert response.status_code == 200
    return {p["id"] for p in response.json["projects"]}


def next_and_label(client, token, project_id):
    served = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token))
    if served.status_code != 200:
        return served.status_code, None
    body = served.json
    labeled = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token), json={
        "example_id": body["example"]["id"], "label": "pos", "lease_id": body["lease"]["id"]})
    return labeled.status_code, labeled.json


def test_an_open_project_is_for_everyone_until_it_has_members(client, admin_token, make_user, make_project, session):
    project_id, other_id = make_project(n=6), make_project(n=2)
    _, ann = make_user("ann", "annotator")
    _, bob = make_user("bob", "annotator")
    assert client.get(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token)).json == {"members": []}
    assert project_id in listed(client, bob) and next_and_label(client, bob, project_id)[0] == 201

    response = put_members(client, admin_token, project_id, [{"user": "ann", "role": "annotator"}])
    assert response.status_code == 200 and response.json == {"members": [{"user": "ann", "role": "annotator"}]}
    assert client.get(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token)).json == response.json

    assert listed(client, ann) == {project_id, other_id}  # the open one too
    assert listed(client, bob) == {other_id}
    assert listed(client, admin_token) == {project_id, other_id}
    status, body = next_and_label(client, ann, project_id)
    assert status == 201 and body["label"]["annotator"] == "ann"
    refused = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(bob))
    assert refused.status_code == 404 and refused.json["error"] == f"no project with id {project_id}"
    example_id = session.scalar(select(Example.id).where(Example.project_id == project_id).limit(1))
    submitted = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(bob),
                            json={"example_id": example_id, "label": "pos"})
    assert submitted.status_code == 404
    assert client.get(f"/api/v1/projects/{project_id}/next", headers=auth(admin_token)).status_code in (200, 204)

    assert put_members(client, admin_token, project_id, []).json == {"members": []}  # open again
    assert project_id in listed(client, bob) and next_and_label(client, bob, project_id)[0] == 201


def test_reviewer_routes_and_objects_of_a_closed_project(app, client, admin_token, make_user, make_project):
    project_id = make_project(examples=[{"external_id": f"e{i}", "text": f"text {i}",
                                         **({"label": "pos" if i % 2 else "neg"} if i < 8 else {})} for i in range(12)])
    _, rev = make_user("rev", "reviewer")          # a member, as annotator there
    _, ann = make_user("ann", "annotator")         # a member, as reviewer there
    _, outsider = make_user("out", "reviewer")     # not a member
    put_members(client, admin_token, project_id, [{"user": "rev", "role": "annotator"}, {"user": "ann", "role": "reviewer"}])
    run_id = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).json["run_id"]
    status, body = next_and_label(client, rev, project_id)
    label_id, example_id = body["label"]["id"], body["label"]["example_id"]

    for url in (f"/api/v1/projects/{project_id}", f"/api/v1/projects/{project_id}/runs",
                f"/api/v1/projects/{project_id}/flags", f"/api/v1/projects/{project_id}/models",
                f"/api/v1/projects/{project_id}/members", f"/api/v1/runs/{run_id}", f"/api/v1/examples/{example_id}"):
        assert client.get(url, headers=auth(ann)).status_code == 200, url           # reviewer here
        forbidden = client.get(url, headers=auth(rev))                               # annotator here
        assert forbidden.status_code == 403 and "on this project" in forbidden.json["error"], url
        assert client.get(url, headers=auth(outsider)).status_code == 404, url       # not a member
    with app.extensions["hitl_sessionmaker"]() as s:
        flag = LabelFlag(project_id=project_id, label_id=label_id, example_id=example_id, given="pos", suggested="neg",
                         score=0.99, reason="model_disagrees", status="open", created_at=utcnow())
        s.add(flag)
        s.commit()
        flag_id = flag.id
    assert client.post(f"/api/v1/flags/{flag_id}", headers=auth(outsider), json={"action": "dismiss"}).status_code == 404
    assert client.post(f"/api/v1/flags/{flag_id}", headers=auth(rev), json={"action": "dismiss"}).status_code == 403
    assert client.post(f"/api/v1/flags/{flag_id}", headers=auth(ann), json={"action": "dismiss"}).status_code == 200
    assert client.post(f"/api/v1/labels/{label_id}/undo", headers=auth(outsider)).status_code == 404
    assert client.post(f"/api/v1/labels/{label_id}/undo", headers=auth(rev)).status_code == 200
    # admin-only routes stay a 403 for everyone else, member or not
    assert client.get(f"/api/v1/projects/{project_id}/export", headers=auth(outsider)).status_code == 403
    assert put_members(client, ann, project_id, []).status_code == 403


def test_a_member_list_is_checked_and_named_in_errors(client, admin_token, make_user, make_project, session):
    project_id = make_project(n=1)
    make_user("ann", "annotator")
    bad = put_members(client, admin_token, project_id, [{"user": "ann", "role": "annotator"},
                                                         {"user": "ghost", "role": "reviewer"},
                                                         {"user": "ann", "role": "admin"}])
    assert bad.status_code == 422
    errors = {e["field"]: e["message"] for e in bad.json["errors"]}
    assert errors["members[1].user"] == "no user named 'ghost'"
    assert errors["members[2].role"] == "must be one of annotator, reviewer"
    assert client.get(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token)).json == {"members": []}
    assert client.put(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token),
                      json={"members": "ann"}).json["errors"][0]["field"] == "members"
    assert client.put(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token),
                      json={}).status_code == 422

    put_members(client, admin_token, project_id, [{"user": "ann", "role": "reviewer"}])
    put_members(client, admin_token, project_id, [{"user": "ann", "role": "reviewer"}])  # no change: no event
    session.rollback()
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "project.members_changed")).all()
    assert len(events) == 1 and events[0].project_id == project_id and events[0].actor_name == "admin"
    assert events[0].details == {"before": [], "after": [{"user": "ann", "role": "reviewer"}]}


def test_pages_of_a_closed_project_are_a_404_for_others(app, client, admin_token, make_user, make_project):
    project_id = make_project(n=3)
    make_user("ann", "annotator")
    make_user("bob", "annotator")
    make_user("rev", "reviewer")
    put_members(client, admin_token, project_id, [{"user": "ann", "role": "annotator"}, {"user": "rev", "role": "reviewer"}])
    name = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["name"]
    ann, bob, rev = logged_in(app, "ann"), logged_in(app, "bob"), logged_in(app, "rev")
    assert name in ann.get("/").get_data(as_text=True) and name not in bob.get("/").get_data(as_text=True)
    for url in (f"/projects/{project_id}", f"/projects/{project_id}/label"):
        assert ann.get(url).status_code == 200, url
        assert bob.get(url).status_code == 404, url
    assert bob.post(f"/projects/{project_id}/label/skip", data={"example_id": "1"}).status_code == 404
    for url in (f"/projects/{project_id}/dashboard", f"/projects/{project_id}/review", f"/projects/{project_id}/runs"):
        assert rev.get(url).status_code == 200, url
        assert ann.get(url).status_code == 403, url
    outsider = logged_in(app, "bob")
    assert outsider.get(f"/projects/{project_id}/dashboard").status_code == 404


def test_a_hidden_project_and_a_missing_one_answer_alike(client, admin_token, make_user, make_project):
    """A 403 for a missing project beside a 404 for a hidden one would tell a non-member which
    ids are hidden projects."""
    hidden = make_project(n=2)
    open_project = make_project(n=2)
    _, ann = make_user("ann", "annotator")
    make_user("member", "annotator")
    put_members(client, admin_token, hidden, [{"user": "member", "role": "annotator"}])
    missing = hidden + open_project + 100
    for path in ("/api/v1/projects/{}/examples", "/api/v1/projects/{}/flags", "/api/v1/projects/{}"):
        hidden_answer = client.get(path.format(hidden), headers=auth(ann))
        missing_answer = client.get(path.format(missing), headers=auth(ann))
        assert (hidden_answer.status_code, missing_answer.status_code) == (404, 404), path
        assert hidden_answer.json["error"].replace(str(hidden), "N") == missing_answer.json["error"].replace(str(missing), "N")
    # On a project the annotator may see, a reviewer's route is still a 403 that says so.
    assert client.get(f"/api/v1/projects/{open_project}/examples", headers=auth(ann)).status_code == 403


def test_the_project_page_shows_settings_to_reviewers_and_admins_but_not_to_annotators(app, client, admin_token,
                                                                                      make_user, make_project):
    project_id = make_project(n=1, settings={"webhook_url": "https://hooks.example.org/x?key=s3cret", "diverse_batches": True})
    make_user("ann")
    make_user("rita", "reviewer")
    make_user("ada", "admin")
    pages = {name: logged_in(app, name).get(f"/projects/{project_id}").get_data(as_text=True) for name in ("ann", "rita", "ada")}
    assert "<h2>Settings</h2>" not in pages["ann"] and "retrain_threshold" not in pages["ann"]
    assert "retrain_threshold" in pages["rita"] and "hooks.example.org" in pages["rita"] and "s3cret" not in pages["rita"]
    assert "key=s3cret" in pages["ada"]
    assert re.search(r"<th>diverse_batches</th><td>on</td>", pages["ada"])
