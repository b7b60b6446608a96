"""The data pages: filters as a GET form with htmx results, pages, empty states, an example's
history, the relabel form (CSRF, roles) and members-only projects."""

from __future__ import annotations

import re

from sqlalchemy import select

from labeling.models import AuditEvent, Example, Label
from tests.app.test_people import logged_in
from tests.conftest import auth

HTMX = {"HX-Request": "true"}
ROWS = [{"external_id": "a-1", "text": "The <b>Cat</b> sat", "label": "pos"},
        {"external_id": "a-2", "text": "a dog barked", "label": "neg"},
        {"external_id": "b-3", "text": "nothing"}]


def example_id(session, project_id, external_id):
    session.rollback()
    return session.scalar(select(Example.id).where(Example.project_id == project_id, Example.external_id == external_id))


def test_the_data_page_filters_pages_and_answers_htmx_with_the_results_alone(app, make_user, make_project, monkeypatch):
    from labeling import browse as browsing

    project_id = make_project(examples=ROWS + [{"external_id": f"z{i:02}", "text": f"filler {i}"} for i in range(60)])
    make_user("rita", "reviewer")
    rita = logged_in(app, "rita")
    assert 'data-testid="data-link"' in rita.get(f"/projects/{project_id}").get_data(as_text=True)
    page = rita.get(f"/projects/{project_id}/data").get_data(as_text=True)
    assert "<html" in page and 'data-testid="data-filters"' in page and "63 examples" in page
    assert "a-1" in page and "z46" in page and "z47" not in page  # 50 a page
    assert "The &lt;b&gt;Cat&lt;/b&gt; sat" in page and "<b>Cat" not in page
    second = rita.get(f"/projects/{project_id}/data?page=2").get_data(as_text=True)
    assert "z47" in second and "a-1" not in second and "← Previous" in second and "Next →" not in second

    found = rita.get(f"/projects/{project_id}/data?q=CAT&label=pos", headers=HTMX)
    body = found.get_data(as_text=True)
    assert found.status_code == 200 and "<html" not in body and "a-1" in body and "a-2" not in body
    assert "1 example match" in body
    unlabeled = rita.get(f"/projects/{project_id}/data?status=unlabeled&q=b-", headers=HTMX).get_data(as_text=True)
    assert "b-3" in unlabeled and "a-1" not in unlabeled

    monkeypatch.setattr(browsing, "SHORT_TEXT_EXAMPLES", 10)
    short = rita.get(f"/projects/{project_id}/data?q=a-", headers=HTMX).get_data(as_text=True)
    assert "2 of the first 10 examples match" in short and "type at least 3 characters" in short
    assert "a-1" in short and "a-2" in short and "Next →" not in short
    nothing = rita.get(f"/projects/{project_id}/data?q=z5", headers=HTMX).get_data(as_text=True)  # z50-z59: not among the first 10
    assert "None of the first 10 examples matches" in nothing and "type at least 3 characters" in nothing
    monkeypatch.undo()

    none = rita.get(f"/projects/{project_id}/data?q=unicorn").get_data(as_text=True)
    assert 'data-testid="data-empty"' in none and "clear the filters" in none
    bad = rita.get(f"/projects/{project_id}/data?status=done&min_confidence=7")
    assert bad.status_code == 422
    assert "status: must be one of" in bad.get_data(as_text=True) and "min_confidence" in bad.get_data(as_text=True)
    assert rita.get(f"/projects/{project_id}/data?status=done", headers=HTMX).status_code == 200  # htmx swaps it


def test_an_empty_project_says_so(app, make_user, make_project):
    project_id = make_project(examples=[])
    make_user("rita", "reviewer")
    page = logged_in(app, "rita").get(f"/projects/{project_id}/data").get_data(as_text=True)
    assert "no examples yet" in page


def test_the_example_page_shows_history_and_relabels_with_a_csrf_token(app_factory, make_user, make_project, session):
    app = app_factory(WTF_CSRF_ENABLED=True)
    project_id = make_project(examples=ROWS[:1])
    make_user("rita", "reviewer")
    a1 = example_id(session, project_id, "a-1")
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"name": "rita", "password": "correct horse", "csrf_token": token})
    page = client.get(f"/projects/{project_id}/examples/{a1}").get_data(as_text=True)
    assert 'data-testid="history"' in page and "<code>import</code>" in page
    assert page.count("<form") == page.count('name="csrf_token"') == 2  # logout, relabel
    url = f"/projects/{project_id}/examples/{a1}/relabel"
    assert client.post(url, data={"label": "neg"}).status_code == 400  # no CSRF token
    session.rollback()
    assert session.scalar(select(Label.id).where(Label.source == "review")) is None
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    done = client.post(url, data={"label": "neg", "csrf_token": token})
    assert done.status_code == 302
    page = client.get(done.headers["Location"]).get_data(as_text=True)
    assert "Relabeled as neg." in page and "<code>review</code>" in page and "<code>import</code>" in page
    session.rollback()
    events = session.scalars(select(Label).where(Label.example_id == a1).order_by(Label.id)).all()
    assert [(e.value, e.source) for e in events] == [("pos", "import"), ("neg", "review")]
    assert events[1].replaces_id == events[0].id
    assert session.scalars(select(AuditEvent).where(AuditEvent.action == "example.relabeled")).one().actor_name == "rita"
    again = client.post(url, data={"label": "neg", "csrf_token": token})
    assert again.status_code == 422 and "already the label" in again.get_data(as_text=True)


def test_annotators_may_not_browse_and_others_get_a_404_on_members_only_projects(app, client, admin_token, make_user,
                                                                                make_project, session):
    project_id = make_project(examples=ROWS[:1])
    make_user("ann")
    make_user("rita", "reviewer")
    make_user("otto", "reviewer")
    a1 = example_id(session, project_id, "a-1")
    ann = logged_in(app, "ann")
    assert ann.get(f"/projects/{project_id}/data").status_code == 403
    assert ann.get(f"/projects/{project_id}/examples/{a1}").status_code == 403
    assert ann.post(f"/projects/{project_id}/examples/{a1}/relabel", data={"label": "neg"}).status_code == 403
    assert 'data-testid="data-link"' not in ann.get(f"/projects/{project_id}").get_data(as_text=True)
    assert client.put(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token),
                      json={"members": [{"user": "rita", "role": "reviewer"}]}).status_code == 200
    otto = logged_in(app, "otto")
    assert otto.get(f"/projects/{project_id}/data").status_code == 404
    assert otto.get(f"/projects/{project_id}/examples/{a1}").status_code == 404
    assert otto.post(f"/projects/{project_id}/examples/{a1}/relabel", data={"label": "neg"}).status_code == 404
    rita = logged_in(app, "rita")
    assert rita.get(f"/projects/{project_id}/examples/{a1}").status_code == 200
    other = make_project(examples=[{"external_id": "o", "text": "other"}])
    assert rita.get(f"/projects/{other}/examples/{a1}").status_code == 404  # an example of another project
    make_user("ada", "admin")
    wrong_project = logged_in(app, "ada").get(f"/projects/{other}/examples/{a1}")
    assert wrong_project.status_code == 404 and "no example with id" in wrong_project.get_data(as_text=True)
    session.rollback()
    assert session.scalar(select(Label.id).where(Label.source == "review")) is None


def test_the_example_page_shows_what_the_champion_says_now_of_a_labeled_example(app, make_user, make_project, session):
    """Labeled examples are not re-scored with the pool: the page asks the champion itself."""
    from tests.labeling.test_training import LABELS, digits_rows

    project_id = make_project(labels=LABELS, examples=digits_rows(120, labeled=100),
                              settings={"retrain_threshold": 100000, "holdout_fraction": 0.2})
    make_user("rita", "reviewer")
    rita = logged_in(app, "rita")
    labeled = rita.get(f"/projects/{project_id}/examples/{example_id(session, project_id, 'd0')}").get_data(as_text=True)
    prediction = re.search(r'data-testid="prediction">(.*?)</p>', labeled, re.S).group(1)
    assert re.match(r"\d, confidence [01]\.\d\d", prediction) and "(model v1)" in prediction
    unlabeled = rita.get(f"/projects/{project_id}/examples/{example_id(session, project_id, 'd110')}").get_data(as_text=True)
    assert "(model v1)" in unlabeled  # scored with the pool


def test_the_data_page_shows_an_image_example_as_a_thumbnail(app, make_user, make_project):
    pixel = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    project_id = make_project(examples=[{"external_id": "img-1", "image": pixel}])
    make_user("rita", "reviewer")
    page = logged_in(app, "rita").get(f"/projects/{project_id}/data").get_data(as_text=True)
    assert f'<img class="thumb" src="{pixel}" alt="image of img-1"' in page and "[image]" not in page


def test_a_form_sent_after_a_logout_elsewhere_goes_to_the_login_page_and_back(app_factory, make_user, make_project):
    app = app_factory(WTF_CSRF_ENABLED=True)
    project_id = make_project(n=2)
    make_user("ann")
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"name": "ann", "password": "correct horse", "csrf_token": token})
    page = client.get(f"/projects/{project_id}/label").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302  # as another tab would
    label_url = f"/projects/{project_id}/label"
    sent = client.post(f"{label_url}/submit", data={"label": "pos", "csrf_token": token},
                       headers={"HX-Request": "true", "HX-Current-URL": f"http://localhost{label_url}"})
    assert sent.status_code == 401 and sent.headers["HX-Redirect"] == f"/login?next={label_url}"
    login_page = client.get(sent.headers["HX-Redirect"]).get_data(as_text=True)
    assert "Your session ended" in login_page
    plain = client.post(f"{label_url}/skip", data={"example_id": "1"}, headers={"Referer": f"http://localhost{label_url}"})
    assert plain.status_code == 302 and plain.headers["Location"].startswith("/login?next=")
    stale_login = client.post("/login", data={"name": "ann", "password": "correct horse", "csrf_token": "stale"})
    assert stale_login.status_code == 400 and "The form expired" in stale_login.get_data(as_text=True)
