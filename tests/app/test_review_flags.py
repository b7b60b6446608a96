"""The review page's flag list: filters (page, htmx and API), bulk dismissal with a confirmation
step (CSRF, roles, audit, skipped flags)."""

from __future__ import annotations

import re

from sqlalchemy import select

from labeling.db import utcnow
from labeling.models import AuditEvent, Example, Label, LabelFlag
from tests.app.test_people import logged_in
from tests.conftest import auth

HTMX = {"HX-Request": "true", "HX-Target": "flag-list"}
# external id, reason, score
FLAGS = [("x-hi", "model_disagrees", 0.95), ("x-mid", "annotators_disagree", 0.5),
         ("x-low", "kept_warning", 0.2), ("<b>x-tag</b>", "model_disagrees", 0.7)]


def flagged_project(app, make_project) -> tuple[int, dict[str, int]]:
    """A project with one open flag per FLAGS row; returns its id and the flag ids by external id."""
    project_id = make_project(examples=[{"external_id": e, "text": f"text of {e}", "label": "pos"} for e, _, _ in FLAGS])
    s = app.extensions["hitl_sessionmaker"]()
    try:
        rows = s.execute(select(Label).where(Label.project_id == project_id)).scalars().all()
        external = dict(s.execute(select(Example.id, Example.external_id).where(Example.project_id == project_id)).all())
        labels = {external[lab.example_id]: lab for lab in rows}
        ids = {}
        for external_id, reason, score in FLAGS:
            lab = labels[external_id]
            flag = LabelFlag(project_id=project_id, label_id=lab.id, example_id=lab.example_id, given="pos",
                             suggested="neg", score=score, reason=reason, status="open", created_at=utcnow())
            s.add(flag)
            s.flush()
            ids[external_id] = flag.id
        s.commit()
        return project_id, ids
    finally:
        s.close()


def shown(body: str) -> set[str]:
    return set(re.findall(r'data-testid="flag-row" data-flag-id="(\d+)"', body))


def test_the_review_page_filters_open_flags_by_reason_and_score(app, make_user, make_project):
    project_id, ids = flagged_project(app, make_project)
    make_user("rita", "reviewer")
    rita = logged_in(app, "rita")
    url = f"/projects/{project_id}/review"
    page = rita.get(url).get_data(as_text=True)
    assert "<html" in page and 'data-testid="flag-filters"' in page
    assert shown(page) == {str(i) for i in ids.values()}
    assert "&lt;b&gt;x-tag&lt;/b&gt;" in page and "<b>x-tag" not in page
    # Each row says why in words and links to its example.
    row = re.search(rf'data-flag-id="{ids["x-low"]}".*?</tr>', page, re.S).group(0)
    assert "kept although the model warned" in row and "kept_warning" not in row
    example = re.search(r'href="(/projects/\d+/examples/\d+)"', row).group(1)
    assert "x-low" in rita.get(example).get_data(as_text=True)
    by_reason = rita.get(f"{url}?reason=model_disagrees", headers=HTMX)
    body = by_reason.get_data(as_text=True)
    assert by_reason.status_code == 200 and "<html" not in body
    assert shown(body) == {str(ids["x-hi"]), str(ids["<b>x-tag</b>"])}
    scored = rita.get(f"{url}?min_score=0.5&max_score=0.9", headers=HTMX).get_data(as_text=True)
    assert shown(scored) == {str(ids["x-mid"]), str(ids["<b>x-tag</b>"])}  # bounds are inclusive
    both = rita.get(f"{url}?reason=model_disagrees&max_score=0.8").get_data(as_text=True)
    assert shown(both) == {str(ids["<b>x-tag</b>"])}
    none = rita.get(f"{url}?reason=kept_warning&min_score=0.9", headers=HTMX).get_data(as_text=True)
    assert 'data-testid="flag-list-empty"' in none and not shown(none)
    bad = rita.get(f"{url}?reason=bogus&min_score=2")
    text = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "reason: must be one of" in text and "min_score: must be a number" in text
    assert not shown(text)
    assert rita.get(f"{url}?max_score=nan", headers=HTMX).status_code == 200  # htmx swaps no 4xx
    crossed = rita.get(f"{url}?min_score=0.95&max_score=0.9")  # an empty list would look like "no flags"
    assert crossed.status_code == 422 and "max_score: must be at least min_score (0.95)" in crossed.get_data(as_text=True)


def test_the_api_filters_flags_and_names_bad_filters(app, client, admin_token, make_project):
    project_id, ids = flagged_project(app, make_project)
    url = f"/api/v1/projects/{project_id}/flags"

    def listed(query: str) -> list[int]:
        response = client.get(f"{url}?{query}", headers=auth(admin_token))
        assert response.status_code == 200, response.json
        return [f["id"] for f in response.json["flags"]]

    assert listed("") == [ids["x-hi"], ids["<b>x-tag</b>"], ids["x-mid"], ids["x-low"]]
    assert listed("reason=annotators_disagree") == [ids["x-mid"]]
    assert listed("min_score=0.7") == [ids["x-hi"], ids["<b>x-tag</b>"]]
    assert listed("max_score=0.5&status=all") == [ids["x-mid"], ids["x-low"]]
    assert listed("reason=model_disagrees&min_score=0.8&max_score=1") == [ids["x-hi"]]
    assert listed("reason=&min_score=") == listed("")  # empty: no filter
    bad = client.get(f"{url}?reason=nope&min_score=x&max_score=-1&status=odd", headers=auth(admin_token))
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json["errors"]} == {"reason", "min_score", "max_score", "status"}


def csrf_client(app, name):
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    assert client.post("/login", data={"name": name, "password": "correct horse", "csrf_token": token}).status_code == 302
    return client


def test_bulk_dismiss_confirms_then_dismisses_open_flags_and_skips_resolved_ones(app_factory, make_user, make_project,
                                                                                   session):
    app = app_factory(WTF_CSRF_ENABLED=True)
    project_id, ids = flagged_project(app, make_project)
    make_user("rita", "reviewer")
    rita = csrf_client(app, "rita")
    page = rita.get(f"/projects/{project_id}/review").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    url = f"/projects/{project_id}/review/dismiss"
    # Someone else resolved x-mid after the page was shown.
    resolved = rita.post(f"/projects/{project_id}/review/{ids['x-mid']}", data={"action": "confirm"},
                         headers={"X-CSRFToken": token})
    assert resolved.status_code == 200
    chosen = [ids["x-hi"], ids["x-mid"], ids["x-low"], ids["<b>x-tag</b>"]]
    assert rita.post(url, data={"flag_id": chosen, "confirm": "yes"}).status_code == 400  # no CSRF token
    session.rollback()
    assert session.scalar(select(LabelFlag).where(LabelFlag.status == "dismissed")) is None

    confirm = rita.post(url, data={"flag_id": chosen, "csrf_token": token, "reason": "model_disagrees"})
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Dismiss 3 flags" in text and "1 already resolved will be skipped" in text
    session.rollback()
    assert session.scalar(select(LabelFlag).where(LabelFlag.status == "dismissed")) is None  # not yet

    done = rita.post(url, data={"flag_id": chosen, "csrf_token": token, "confirm": "yes", "reason": "model_disagrees"})
    assert done.status_code == 302 and done.headers["Location"].endswith("?reason=model_disagrees")
    after = rita.get(done.headers["Location"]).get_data(as_text=True)
    assert "3 dismissed, 1 was already resolved." in after
    session.rollback()
    statuses = dict(session.execute(select(LabelFlag.id, LabelFlag.status)).all())
    assert statuses == {ids["x-hi"]: "dismissed", ids["x-mid"]: "confirmed", ids["x-low"]: "dismissed",
                        ids["<b>x-tag</b>"]: "dismissed"}
    audited = session.scalars(select(AuditEvent).where(AuditEvent.action == "flag.resolved")).all()
    dismissals = [e for e in audited if e.details["action"] == "dismiss"]
    assert sorted(int(e.target) for e in dismissals) == sorted(i for i in chosen if i != ids["x-mid"])
    assert {e.actor_name for e in dismissals} == {"rita"}

    again = rita.post(url, data={"flag_id": [ids["x-hi"]], "csrf_token": token, "confirm": "yes"})
    assert "0 dismissed, 1 was already resolved." in rita.get(again.headers["Location"]).get_data(as_text=True)
    nothing = rita.post(url, data={"csrf_token": token, "confirm": "yes"})
    assert "Select the flags" in rita.get(nothing.headers["Location"]).get_data(as_text=True)


def test_annotators_may_not_dismiss_in_bulk_and_admins_may(app, make_user, make_project, session):
    project_id, ids = flagged_project(app, make_project)
    make_user("ann")
    make_user("boss", "admin")
    url = f"/projects/{project_id}/review/dismiss"
    ann = logged_in(app, "ann")
    assert ann.post(url, data={"flag_id": [ids["x-hi"]], "confirm": "yes"}).status_code == 403
    assert ann.get(f"/projects/{project_id}/review?reason=kept_warning").status_code == 403
    session.rollback()
    assert session.get(LabelFlag, ids["x-hi"]).status == "open"
    boss = logged_in(app, "boss")
    assert boss.post(url, data={"flag_id": [ids["x-hi"], ids["x-low"]], "confirm": "yes"}).status_code == 302
    session.rollback()
    assert [session.get(LabelFlag, i).status for i in (ids["x-hi"], ids["x-low"], ids["x-mid"])] == \
        ["dismissed", "dismissed", "open"]


def test_a_flag_resolved_by_keyboard_leaves_the_list_below_under_the_page_filters(app, make_user, make_project):
    project_id, ids = flagged_project(app, make_project)
    make_user("rita", "reviewer")
    rita = logged_in(app, "rita")
    page = f"http://localhost/projects/{project_id}/review?reason=model_disagrees"
    answer = rita.post(f"/projects/{project_id}/review/{ids['x-hi']}", data={"action": "dismiss"},
                       headers={"HX-Request": "true", "HX-Current-URL": page})
    body = answer.get_data(as_text=True)
    assert answer.status_code == 200 and "Flag dismissed." in body
    listed = body.split('id="flag-list" hx-swap-oob="true"', 1)[1]
    assert shown(listed) == {str(ids["<b>x-tag</b>"])}  # the other model_disagrees flag; the dismissed one gone
    assert "1 open flag" in listed


def test_an_archived_project_shows_its_flags_without_ways_to_resolve_them(app, client, admin_token, make_user,
                                                                            make_project):
    project_id, ids = flagged_project(app, make_project)
    assert client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"archived": True}).status_code == 200
    make_user("boss", "admin")
    boss = logged_in(app, "boss")
    page = boss.get(f"/projects/{project_id}/review").get_data(as_text=True)
    assert "This project is archived: its flags can be read, not resolved." in page
    assert shown(page) == {str(i) for i in ids.values()}  # still listed
    assert "data-hotkey" not in page and "Dismiss selected" not in page and "Keys:" not in page
    assert "Retrain now" not in boss.get(f"/projects/{project_id}/runs").get_data(as_text=True)


def test_a_project_with_no_open_flags_shows_the_empty_state_without_keys_or_filters(app, make_user, make_project):
    project_id = make_project(examples=[{"external_id": "a", "text": "text", "label": "pos"}])
    make_user("rita", "reviewer")
    rita = logged_in(app, "rita")
    page = rita.get(f"/projects/{project_id}/review").get_data(as_text=True)
    assert 'data-testid="empty"' in page
    assert 'data-testid="flag-filters"' not in page and 'data-testid="review-keys"' not in page
    flagged_id, _ = flagged_project(app, make_project)
    with_flags = rita.get(f"/projects/{flagged_id}/review").get_data(as_text=True)
    assert 'data-testid="flag-filters"' in with_flags and 'data-testid="review-keys"' in with_flags
