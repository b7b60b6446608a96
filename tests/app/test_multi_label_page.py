"""The labeling page of a multi-label project: the form sends a set (possibly empty) in `labels`
with a marker, the single-label field is a 422 in the page, and sets read as "a, b" wherever a
page prints an annotation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from labeling.models import Label
from tests.conftest import auth

TAGS = ("sports", "politics", "tech")


def _login(client, name):
    assert client.post("/login", data={"name": name, "password": "correct horse"}).status_code == 302


def _lease(client, token, project_id):
    response = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token))
    assert response.status_code == 200, response.json
    return response.json


def _form(lease, **fields):
    return {"example_id": str(lease["example"]["id"]), "lease_id": str(lease["lease"]["id"]), **fields}


@pytest.fixture
def multi(make_project, make_user, client):
    def make(n=4, settings=None):
        project_id = make_project(n=n, labels=TAGS, settings={"task": "multi_label", "holdout_fraction": 0,
                                                              **(settings or {})})
        _, token = make_user("ann")
        _login(client, "ann")
        return project_id, token
    return make


def test_the_page_shows_toggles_and_an_empty_chosen_set(client, multi):
    project_id, _ = multi()
    page = client.get(f"/projects/{project_id}/label")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count('aria-pressed="false"') == 3 and 'name="labels_sent"' in html
    assert 'name="label"' not in html and "None of these" in html and 'data-hotkey="Enter"' in html


def test_a_set_and_an_empty_set_are_submitted_from_the_form(app, client, session, multi):
    project_id, token = multi()
    first = _lease(client, token, project_id)
    response = client.post(f"/projects/{project_id}/label/submit", headers={"HX-Request": "true"},
                           data=_form(first, labels_sent="1", labels=["tech", "sports"], idempotency_key="v1",
                                      duration_ms="1200"))
    assert response.status_code == 200
    # The undo button names the set just given, readably.
    assert 'data-testid="last-label">sports, tech</span>' in response.get_data(as_text=True)
    second = _lease(client, token, project_id)
    response = client.post(f"/projects/{project_id}/label/submit", headers={"HX-Request": "true"},
                           data=_form(second, labels_sent="1", idempotency_key="v2"))
    assert response.status_code == 200
    assert 'data-testid="last-label">none of these</span>' in response.get_data(as_text=True)
    rows = session.execute(select(Label.example_id, Label.value, Label.duration_ms).order_by(Label.id)).all()
    assert [(r.example_id, json.loads(r.value), r.duration_ms) for r in rows] == [
        (first["example"]["id"], ["sports", "tech"], 1200), (second["example"]["id"], [], None)]
    # The same view key again writes nothing.
    again = client.post(f"/projects/{project_id}/label/submit", data=_form(first, labels_sent="1", labels=["tech"],
                                                                            idempotency_key="v1"))
    assert again.status_code == 200
    assert len(session.execute(select(Label.id)).all()) == 2


@pytest.mark.parametrize("fields, field", [
    ({"label": "tech"}, "label"),                       # the single-label field
    ({"label": "tech", "labels": ["tech"]}, "label"),
    ({}, "labels"),                                     # no annotation at all (no marker)
    ({"labels_sent": "1", "labels": ["weather"]}, "labels"),
])
def test_the_wrong_or_a_missing_field_is_a_422_in_the_page(client, session, multi, fields, field):
    project_id, token = multi()
    lease = _lease(client, token, project_id)
    response = client.post(f"/projects/{project_id}/label/submit", headers={"HX-Request": "true"},
                           data=_form(lease, **fields))
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and f"field &#39;{field}&#39;" in html and 'role="alert"' in html
    assert session.execute(select(Label.id)).first() is None


def test_a_single_label_page_is_unchanged_and_refuses_labels(client, session, make_project, make_user):
    project_id = make_project(n=3)
    _, token = make_user("ann")
    _login(client, "ann")
    html = client.get(f"/projects/{project_id}/label").get_data(as_text=True)
    assert 'name="label" value="pos"' in html and "data-toggle" not in html and "labels_sent" not in html
    lease = _lease(client, token, project_id)
    refused = client.post(f"/projects/{project_id}/label/submit", headers={"HX-Request": "true"},
                          data=_form(lease, labels_sent="1", labels=["pos"]))
    assert refused.status_code == 422 and "field &#39;labels&#39;" in refused.get_data(as_text=True)
    done = client.post(f"/projects/{project_id}/label/submit", headers={"HX-Request": "true"},
                       data=_form(lease, label="neg"))
    assert done.status_code == 200 and 'data-testid="last-label">neg</span>' in done.get_data(as_text=True)
    assert session.scalar(select(Label.value)) == "neg"


def test_undo_and_skip_work_on_a_multi_label_page(client, session, multi):
    project_id, token = multi()
    lease = _lease(client, token, project_id)
    client.post(f"/projects/{project_id}/label/submit", data=_form(lease, labels_sent="1", labels=["politics"]))
    label_id = session.scalar(select(Label.id))
    undone = client.post(f"/projects/{project_id}/label/undo", data={"label_id": str(label_id)})
    assert undone.status_code == 200 and f'data-example-id="{lease["example"]["id"]}"' in undone.get_data(as_text=True)
    skipped = client.post(f"/projects/{project_id}/label/skip", data={"example_id": str(lease["example"]["id"])})
    assert skipped.status_code == 200 and f'data-example-id="{lease["example"]["id"]}"' not in skipped.get_data(as_text=True)


@pytest.mark.parametrize("mode", ["show", "preselect"])
def test_suggestions_on_do_not_break_a_multi_label_page(client, multi, mode):
    project_id, _ = multi(settings={"suggestions": mode, "blind_share": 0})
    page = client.get(f"/projects/{project_id}/label")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "data-toggle" in html and 'data-testid="suggestion"' not in html


def test_the_data_and_example_pages_print_sets_readably(client, admin_token, multi):
    project_id, token = multi(n=2)
    lease = _lease(client, token, project_id)
    client.post(f"/projects/{project_id}/label/submit", data=_form(lease, labels_sent="1", labels=["tech", "sports"]))
    other = _lease(client, token, project_id)
    client.post(f"/projects/{project_id}/label/submit", data=_form(other, labels_sent="1"))
    client.post("/logout")
    assert client.post("/login", data={"name": "admin", "password": "correct horse"}).status_code == 302
    data = client.get(f"/projects/{project_id}/data").get_data(as_text=True)
    assert "sports, tech" in data and "none of these" in data and "&#34;" not in data and "[&#" not in data
    example = client.get(f"/projects/{project_id}/examples/{lease['example']['id']}").get_data(as_text=True)
    assert "sports, tech" in example and "[&#34;" not in example


def test_the_review_page_prints_a_flag_s_sets_readably(app, client, session, make_user, multi):
    from labeling.db import utcnow
    from labeling.models import LabelFlag

    project_id, token = multi(n=2)
    lease = _lease(client, token, project_id)
    client.post(f"/projects/{project_id}/label/submit", data=_form(lease, labels_sent="1", labels=["tech"]))
    label_id = session.scalar(select(Label.id))
    with app.extensions["hitl_sessionmaker"]() as s:
        s.add(LabelFlag(project_id=project_id, label_id=label_id, example_id=lease["example"]["id"], given='["tech"]',
                        suggested='[]', score=0.9, reason="model_disagrees", status="open", created_at=utcnow()))
        s.commit()
    make_user("rev", "reviewer")
    client.post("/logout")
    _login(client, "rev")
    page = client.get(f"/projects/{project_id}/review").get_data(as_text=True)
    assert 'data-testid="given"><strong>tech</strong>' in page
    assert 'data-testid="suggested"><strong>none of these</strong>' in page and "[&#34;" not in page


def test_the_create_form_chooses_the_task(client, session, make_user):
    from labeling.models import Project

    make_user("boss", "admin")
    _login(client, "boss")
    assert 'name="task"' in client.get("/").get_data(as_text=True)
    created = client.post("/projects", data={"name": "Tags", "labels": "a, b", "task": "multi_label"})
    assert created.status_code == 302
    plain = client.post("/projects", data={"name": "Plain", "labels": "a, b"})
    assert plain.status_code == 302
    assert dict(session.execute(select(Project.name, Project.task_kind)).all()) == {
        "Tags": "multi_label", "Plain": "single_label"}
    bad = client.post("/projects", data={"name": "Bad", "labels": "a", "task": "ranking"})
    assert bad.status_code == 422 and "task" in bad.get_data(as_text=True)


def test_the_example_page_relabels_with_a_set(client, session, make_user, multi):
    project_id, token = multi(n=2)
    lease = _lease(client, token, project_id)
    example_id = lease["example"]["id"]
    client.post(f"/projects/{project_id}/label/submit", data=_form(lease, labels_sent="1", labels=["tech"]))
    make_user("rev", "reviewer")
    client.post("/logout")
    _login(client, "rev")
    page = client.get(f"/projects/{project_id}/examples/{example_id}").get_data(as_text=True)
    assert 'data-testid="relabel-set"' in page and 'name="labels_sent"' in page and '<select name="label"' not in page
    url = f"/projects/{project_id}/examples/{example_id}/relabel"
    refused = client.post(url, data={"label": "tech"})
    assert refused.status_code == 422 and "label" in refused.get_data(as_text=True)
    done = client.post(url, data={"labels_sent": "1", "labels": ["politics", "sports"]}, follow_redirects=True)
    assert done.status_code == 200 and "Relabeled as sports, politics." in done.get_data(as_text=True)
    emptied = client.post(url, data={"labels_sent": "1"}, follow_redirects=True)
    assert emptied.status_code == 200 and "Relabeled as none of these." in emptied.get_data(as_text=True)
    values = session.scalars(select(Label.value).where(Label.source == "review").order_by(Label.id)).all()
    assert [json.loads(v) for v in values] == [["sports", "politics"], []]


def test_the_review_page_corrects_a_flag_with_a_set(app, client, session, make_user, multi):
    from labeling.db import utcnow
    from labeling.models import LabelFlag

    project_id, token = multi(n=2)
    lease = _lease(client, token, project_id)
    client.post(f"/projects/{project_id}/label/submit", data=_form(lease, labels_sent="1", labels=["tech"]))
    with app.extensions["hitl_sessionmaker"]() as s:
        flag = LabelFlag(project_id=project_id, label_id=s.scalar(select(Label.id)), example_id=lease["example"]["id"],
                         given='["tech"]', suggested='["sports"]', score=0.9, reason="model_disagrees", status="open",
                         created_at=utcnow())
        s.add(flag)
        s.commit()
        flag_id = flag.id
    make_user("rev", "reviewer")
    client.post("/logout")
    _login(client, "rev")
    page = client.get(f"/projects/{project_id}/review").get_data(as_text=True)
    assert 'class="correct-set"' in page and "Correct to this set" in page
    done = client.post(f"/projects/{project_id}/review/{flag_id}", headers={"HX-Request": "true"},
                       data={"action": "correct", "labels_sent": "1", "labels": ["politics", "tech"]})
    assert done.status_code == 200 and "Flag corrected." in done.get_data(as_text=True)
    latest = session.scalar(select(Label.value).where(Label.source == "review"))
    assert json.loads(latest) == ["politics", "tech"]
