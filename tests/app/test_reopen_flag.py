"""A reviewer takes a decision on a flag back (a misclick): the flag is open again, the given label
current again, and the annotator's counts as if the decision had never been made."""

from __future__ import annotations

import re

from sqlalchemy import select

from labeling import labels as labels_module, quality
from labeling.db import utcnow
from labeling.models import AuditEvent, Label, LabelFlag, Project, User
from tests.app.test_people import logged_in
from tests.conftest import auth


def annotated_flag(app, client, make_user, make_project) -> tuple[int, int, int]:
    """A project where annotator ann labeled one example "pos" and a flag doubts it; returns
    (project id, flag id, ann's label id)."""
    project_id = make_project(examples=[{"external_id": "e1", "text": "a fine film"}])
    _, ann_token = make_user("ann")
    example_id = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(ann_token)).json["example"]["id"]
    answer = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(ann_token),
                         json={"example_id": example_id, "label": "pos"})
    assert answer.status_code == 201
    label_id = answer.json["label"]["id"]
    s = app.extensions["hitl_sessionmaker"]()
    try:
        flag = LabelFlag(project_id=project_id, label_id=label_id, example_id=example_id, given="pos", suggested="neg",
                         score=0.95, reason="model_disagrees", status="open", created_at=utcnow())
        s.add(flag)
        s.commit()
        return project_id, flag.id, label_id
    finally:
        s.close()


def current_values(session, project_id: int) -> list[tuple[str, str]]:
    from labeling.snapshots import current_labels_query
    session.rollback()  # a new read: the app committed since
    return [(lab.value, lab.source) for lab in session.scalars(current_labels_query(project_id))]


def resolve(client, token, flag_id, body):
    return client.post(f"/api/v1/flags/{flag_id}", headers=auth(token), json=body)


def test_reopening_a_confirmed_flag_restores_the_given_label_in_the_annotators_name(
        app, client, make_user, make_project, session):
    project_id, flag_id, label_id = annotated_flag(app, client, make_user, make_project)
    _, rita = make_user("rita", "reviewer")
    assert resolve(client, rita, flag_id, {"action": "confirm"}).json["flag"]["status"] == "confirmed"
    assert current_values(session, project_id) == [("neg", "review")]
    quality_before = quality.annotator_quality(session, project_id)

    reopened = resolve(client, rita, flag_id, {"action": "reopen"})
    assert reopened.status_code == 200 and reopened.json["flag"]["status"] == "open"
    assert current_values(session, project_id) == [("pos", "review_undo")]
    flag = session.get(LabelFlag, flag_id)
    restored = session.get(Label, flag.label_id)
    ann = session.scalar(select(User).where(User.name == "ann"))
    assert flag.label_id != label_id and restored.annotator_id == ann.id and restored.value == "pos"
    assert (flag.resolved_by_id, flag.resolved_at, flag.resolution_label_id) == (None, None, None)
    # ann's counts: one label, no mistake (the confirmed one counted before the decision was taken back).
    assert quality_before[0]["mistakes"] == 1
    after = quality.annotator_quality(session, project_id)[0]
    assert (after["annotator"], after["labels"], after["mistakes"], after["open_flags"]) == ("ann", 1, 0, 1)
    project = session.get(Project, project_id)
    assert labels_module.labels_today(session, project, ann, now=utcnow()) == 1
    # Her label was replaced by the review; the restored one is the reviewer's act, not hers to undo.
    assert labels_module.last_label_to_undo(session, project, ann, since=utcnow().replace(hour=0)) is None
    events = session.scalars(select(AuditEvent).where(AuditEvent.action == "flag.reopened")).all()
    assert [(e.actor_name, int(e.target), e.details["was"]) for e in events] == [("rita", flag_id, "confirmed")]

    # Decided again, the other way: the restored label is kept.
    assert resolve(client, rita, flag_id, {"action": "dismiss"}).json["flag"]["status"] == "dismissed"
    assert current_values(session, project_id) == [("pos", "review_undo")]


def test_reopening_a_dismissed_flag_changes_no_label(app, client, make_user, make_project, session):
    project_id, flag_id, label_id = annotated_flag(app, client, make_user, make_project)
    _, rita = make_user("rita", "reviewer")
    resolve(client, rita, flag_id, {"action": "dismiss"})
    assert resolve(client, rita, flag_id, {"action": "reopen"}).json["flag"]["status"] == "open"
    session.rollback()
    assert session.get(LabelFlag, flag_id).label_id == label_id
    assert current_values(session, project_id) == [("pos", "annotator")]
    corrected = resolve(client, rita, flag_id, {"action": "correct", "label": "neg"})
    assert corrected.json["flag"]["status"] == "corrected"
    assert current_values(session, project_id) == [("neg", "review")]


def test_only_the_reviewer_who_decided_or_an_admin_may_reopen_and_only_while_nothing_changed(
        app, client, make_user, make_project, admin_token, session):
    project_id, flag_id, _ = annotated_flag(app, client, make_user, make_project)
    _, rita = make_user("rita", "reviewer")
    _, rex = make_user("rex", "reviewer")
    _, ann = make_user("ann2")
    never = resolve(client, rita, flag_id, {"action": "reopen"})
    assert never.status_code == 409 and "this flag is open" in never.json["error"]
    resolve(client, rita, flag_id, {"action": "correct", "label": "neg"})
    assert resolve(client, ann, flag_id, {"action": "reopen"}).status_code == 403
    other = resolve(client, rex, flag_id, {"action": "reopen"})
    assert other.status_code == 403 and "another reviewer decided" in other.json["error"]
    assert resolve(client, admin_token, flag_id, {"action": "reopen"}).status_code == 200
    # Decided again, then the example is relabeled: the decision can no longer be taken back.
    resolve(client, rita, flag_id, {"action": "confirm"})
    session.rollback()
    example_id = session.get(LabelFlag, flag_id).example_id
    rita_page = logged_in(app, "rita")
    assert rita_page.post(f"/projects/{project_id}/examples/{example_id}/relabel", data={"label": "pos"}).status_code < 400
    changed = resolve(client, rita, flag_id, {"action": "reopen"})
    assert changed.status_code == 409 and "relabeled since" in changed.json["error"]
    session.rollback()
    assert session.get(LabelFlag, flag_id).status == "confirmed"


def test_the_review_page_offers_to_take_the_last_decision_back(app, client, make_user, make_project):
    project_id, flag_id, _ = annotated_flag(app, client, make_user, make_project)
    make_user("rita", "reviewer")
    rita = logged_in(app, "rita")
    decided = rita.post(f"/projects/{project_id}/review/{flag_id}", data={"action": "confirm"},
                        headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Flag confirmed." in decided and 'data-testid="empty"' in decided
    undo = re.search(r'<button[^>]*data-testid="reopen"[^>]*>', decided).group(0)
    assert 'data-hotkey="Backspace"' in undo and f"/review/{flag_id}/reopen" in undo
    back = rita.post(f"/projects/{project_id}/review/{flag_id}/reopen", headers={"HX-Request": "true"})
    body = back.get_data(as_text=True)
    assert back.status_code == 200 and "the flag is open again" in body
    assert f'data-flag-id="{flag_id}"' in body and 'data-testid="reopen"' not in body
    again = rita.post(f"/projects/{project_id}/review/{flag_id}/reopen", headers={"HX-Request": "true"})
    assert "this flag is open" in again.get_data(as_text=True)


def test_after_a_reload_backspace_walks_back_through_my_decisions(app, client, make_user, make_project, session):
    project_id = make_project(examples=[{"external_id": f"e{i}", "text": f"text {i}", "label": "pos"} for i in range(3)])
    session.rollback()
    labels = session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.id)).all()
    s = app.extensions["hitl_sessionmaker"]()
    flag_ids = []
    for lab in labels:
        flag = LabelFlag(project_id=project_id, label_id=lab.id, example_id=lab.example_id, given="pos",
                         suggested="neg", score=0.9, reason="model_disagrees", status="open", created_at=utcnow())
        s.add(flag)
        s.flush()
        flag_ids.append(flag.id)
    s.commit()
    s.close()
    _, rita_token = make_user("rita", "reviewer")
    make_user("rex", "reviewer")
    rita = logged_in(app, "rita")
    url = f"/projects/{project_id}/review"
    assert 'data-testid="reopen"' not in rita.get(url).get_data(as_text=True)  # nothing decided yet
    resolve(client, rita_token, flag_ids[0], {"action": "dismiss"})
    resolve(client, rita_token, flag_ids[1], {"action": "confirm"})
    # Another reviewer's page offers nothing to take back: the decisions are rita's.
    assert 'data-testid="reopen"' not in logged_in(app, "rex").get(url).get_data(as_text=True)

    def offered(body):
        return re.search(r'data-testid="reopen"[^>]*hx-post="[^"]*/review/(\d+)/reopen"', body).group(1)

    page = rita.get(url).get_data(as_text=True)  # a reload: the last decision is still offered
    assert offered(page) == str(flag_ids[1])
    back = rita.post(f"{url}/{flag_ids[1]}/reopen", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'data-flag-id="{flag_ids[1]}"' in back and offered(back) == str(flag_ids[0])  # then the one before
    again = rita.post(f"{url}/{flag_ids[0]}/reopen", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'data-flag-id="{flag_ids[0]}"' in again and 'data-testid="reopen"' not in again
    session.rollback()
    assert [session.get(LabelFlag, i).status for i in flag_ids] == ["open", "open", "open"]


def test_a_decision_is_taken_back_from_the_examples_page(app, client, make_user, make_project, session):
    project_id, flag_id, _ = annotated_flag(app, client, make_user, make_project)
    _, rita_token = make_user("rita", "reviewer")
    make_user("rex", "reviewer")
    resolve(client, rita_token, flag_id, {"action": "dismiss"})
    session.rollback()
    example_id = session.get(LabelFlag, flag_id).example_id
    page_url = f"/projects/{project_id}/examples/{example_id}"
    assert 'data-testid="reopen-flag"' not in logged_in(app, "rex").get(page_url).get_data(as_text=True)
    rita = logged_in(app, "rita")
    assert 'data-testid="reopen-flag"' in rita.get(page_url).get_data(as_text=True)
    done = rita.post(f"{page_url}/flags/{flag_id}/reopen")
    assert done.status_code == 302
    after = rita.get(done.headers["Location"]).get_data(as_text=True)
    assert "Decision taken back" in after and 'data-testid="reopen-flag"' not in after
    twice = rita.post(f"{page_url}/flags/{flag_id}/reopen")
    assert twice.status_code == 409 and "this flag is open" in twice.get_data(as_text=True)
    assert rita.post(f"/projects/{project_id}/examples/{example_id + 1000}/flags/{flag_id}/reopen").status_code == 404


def two_annotated_flags(app, client, make_user, make_project) -> tuple[int, list[int], list[int], str]:
    """Two examples ann labeled "pos", each with an open flag; (project, flag ids, label ids, ann's token)."""
    project_id = make_project(examples=[{"external_id": f"e{i}", "text": f"film {i}"} for i in range(2)])
    _, ann = make_user("ann")
    label_ids = []
    for _ in range(2):
        example_id = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(ann)).json["example"]["id"]
        label_ids.append(client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(ann),
                                     json={"example_id": example_id, "label": "pos"}).json["label"]["id"])
    s = app.extensions["hitl_sessionmaker"]()
    try:
        flags = [LabelFlag(project_id=project_id, label_id=lab.id, example_id=lab.example_id, given="pos",
                           suggested="neg", score=0.9, reason="model_disagrees", status="open", created_at=utcnow())
                 for lab in (s.get(Label, i) for i in label_ids)]
        s.add_all(flags)
        s.commit()
        return project_id, [f.id for f in flags], label_ids, ann
    finally:
        s.close()


def test_a_decision_the_example_outgrew_is_passed_over_not_offered_forever(app, client, make_user, make_project,
                                                                             session):
    project_id, flag_ids, label_ids, ann = two_annotated_flags(app, client, make_user, make_project)
    _, rita_token = make_user("rita", "reviewer")
    for flag_id in flag_ids:
        resolve(client, rita_token, flag_id, {"action": "dismiss"})
    # ann takes her second label back after it was judged right: that decision cannot be taken back.
    assert client.post(f"/api/v1/labels/{label_ids[1]}/undo", headers=auth(ann)).status_code == 200
    stuck = resolve(client, rita_token, flag_ids[1], {"action": "reopen"})
    assert stuck.status_code == 409 and "relabeled since" in stuck.json["error"]
    rita = logged_in(app, "rita")
    page = rita.get(f"/projects/{project_id}/review").get_data(as_text=True)
    assert f"/review/{flag_ids[0]}/reopen" in page and f"/review/{flag_ids[1]}/reopen" not in page
    session.rollback()
    first, second = (session.get(LabelFlag, i) for i in flag_ids)
    pages = [rita.get(f"/projects/{project_id}/examples/{f.example_id}").get_data(as_text=True) for f in (first, second)]
    assert 'data-testid="reopen-flag"' in pages[0] and 'data-testid="reopen-flag"' not in pages[1]
    # A flag of the other example is not this example's to reopen.
    assert rita.post(f"/projects/{project_id}/examples/{second.example_id}/flags/{first.id}/reopen").status_code == 404


def test_no_decision_is_taken_back_on_an_archived_project(app, client, make_user, make_project, admin_token):
    project_id, flag_id, _ = annotated_flag(app, client, make_user, make_project)
    _, rita = make_user("rita", "reviewer")
    resolve(client, rita, flag_id, {"action": "dismiss"})
    client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"archived": True})
    refused = resolve(client, rita, flag_id, {"action": "reopen"})
    assert refused.status_code == 409 and "archived" in refused.json["error"]


def test_dismissing_a_flag_whose_label_went_closes_it_instead(app, client, make_user, make_project, session,
                                                             admin_token):
    project_id, flag_ids, label_ids, _ = two_annotated_flags(app, client, make_user, make_project)
    session.rollback()
    for label_id in label_ids:  # replaced by a path that does not close flags itself
        flagged = session.get(Label, label_id)
        session.add(Label(project_id=project_id, example_id=flagged.example_id, value="neg", replaces_id=flagged.id,
                          source="test-replace", created_at=flagged.created_at))
    session.commit()
    answer = resolve(client, admin_token, flag_ids[0], {"action": "dismiss"})
    assert answer.status_code == 409 and "the flag is closed" in answer.json["error"]
    make_user("rita", "reviewer")
    rita = logged_in(app, "rita")
    done = rita.post(f"/projects/{project_id}/review/dismiss", data={"flag_id": flag_ids, "confirm": "yes"})
    assert "0 dismissed" in rita.get(done.headers["Location"]).get_data(as_text=True)  # skipped, not judged
    session.rollback()
    assert [session.get(LabelFlag, i).status for i in flag_ids] == ["superseded", "superseded"]
