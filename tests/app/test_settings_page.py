"""The project settings page (admin): settings with errors beside their fields, the webhook
secret shown once and rotated, a signed test event, members, archive and delete."""

import re

from sqlalchemy import select
from standardwebhooks import Webhook

from labeling.models import AuditEvent, Project
from tests.app.test_people import logged_in
from tests.app.test_webhooks import Receiver
from tests.conftest import auth

HTMX = {"HX-Request": "true"}


def events(session, action):
    session.rollback()
    return session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)).all()


def stored_settings(session, project_id):
    session.rollback()
    return session.get(Project, project_id, populate_existing=True).settings


def test_the_page_is_for_admins_and_every_form_has_a_csrf_token(app_factory, make_user):
    app = app_factory(WTF_CSRF_ENABLED=True)
    make_user("boss", "admin")
    make_user("rev", "reviewer")
    client = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    client.post("/login", data={"name": "boss", "password": "correct horse", "csrf_token": token})
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)
    assert client.post("/projects", data={"name": "Reviews", "labels": "pos,neg", "csrf_token": token}).status_code == 302
    page = client.get("/projects/1/settings").get_data(as_text=True)
    forms = page.count("<form")
    assert forms == 8 and page.count('name="csrf_token"') == forms  # logout + seven on the page
    assert "hx-confirm=\"Replace the webhook secret?" in page
    assert client.post("/projects/1/settings", data={"retrain_threshold": "5"}).status_code == 400  # no token
    reviewer = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', reviewer.get("/login").get_data(as_text=True)).group(1)
    reviewer.post("/login", data={"name": "rev", "password": "correct horse", "csrf_token": token})
    token = re.search(r'name="csrf_token" value="([^"]+)"', reviewer.get("/").get_data(as_text=True)).group(1)
    assert reviewer.get("/projects/1/settings").status_code == 403
    for url in ("/projects/1/settings", "/projects/1/members", "/projects/1/webhook-secret", "/projects/1/webhook-test",
                "/projects/1/archive", "/projects/1/delete", "/projects/1/settings/name-and-labels"):
        assert reviewer.post(url, data={"csrf_token": token, "confirm": "Reviews"}).status_code == 403, url


def test_settings_are_saved_with_the_api_s_checks_and_errors_beside_the_field(app, make_user, make_project, session):
    project_id = make_project(n=1)
    admin = logged_in(app, "admin")
    bad = admin.post(f"/projects/{project_id}/settings", data={
        "strategy": "margin", "retrain_threshold": "lots", "overlap": "0", "featurizer": "auto",
        "holdout_fraction": "0.1", "webhook_url": "ftp://example.org/x"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert re.search(r'data-testid="error-retrain_threshold">must be a whole number from 1 to 100000<', page)
    assert re.search(r'data-testid="error-overlap">must be a whole number from 1 to 50<', page)
    assert re.search(r'data-testid="error-webhook_url">must be an http\(s\) URL<', page)
    assert 'value="lots"' in page  # what was typed stays in the field
    assert stored_settings(session, project_id)["retrain_threshold"] == 20

    ok = admin.post(f"/projects/{project_id}/settings", data={
        "strategy": "entropy", "retrain_threshold": "7", "overlap": "1", "featurizer": "auto", "holdout_fraction": "0.2",
        "webhook_url": ""}, headers=HTMX)
    body = ok.get_data(as_text=True)
    assert ok.status_code == 200 and "<html" not in body
    assert "Saved: holdout_fraction, retrain_threshold, strategy." in body
    settings = stored_settings(session, project_id)
    assert (settings["strategy"], settings["retrain_threshold"], settings["holdout_fraction"]) == ("entropy", 7, 0.2)
    assert events(session, "project.settings_changed")[-1].details == {
        "keys": ["holdout_fraction", "retrain_threshold", "strategy"]}
    assert "Nothing changed." in admin.post(f"/projects/{project_id}/settings", data={"retrain_threshold": "7"}).get_data(as_text=True)


def test_the_secret_is_shown_once_rotated_and_a_signed_test_event_is_sent(app, make_user, make_project, session):
    project_id = make_project(n=1)
    admin = logged_in(app, "admin")
    receiver = Receiver()
    try:
        untested = admin.post(f"/projects/{project_id}/webhook-test")
        assert untested.status_code == 422 and 'data-testid="error-webhook_url">set a webhook URL first' in untested.get_data(as_text=True)
        saved = admin.post(f"/projects/{project_id}/settings", data={"webhook_url": receiver.url}).get_data(as_text=True)
        secret = re.search(r'data-testid="secret">(whsec_[^<]+)<', saved).group(1)
        assert stored_settings(session, project_id)["webhook_secret"] == secret
        assert secret not in admin.get(f"/projects/{project_id}/settings").get_data(as_text=True)

        rotated = admin.post(f"/projects/{project_id}/webhook-secret", headers=HTMX).get_data(as_text=True)
        new_secret = re.search(r'data-testid="secret">(whsec_[^<]+)<', rotated).group(1)
        assert new_secret != secret and stored_settings(session, project_id)["webhook_secret"] == new_secret
        assert len(events(session, "project.webhook_secret_rotated")) == 1

        tested = admin.post(f"/projects/{project_id}/webhook-test", headers=HTMX).get_data(as_text=True)
        assert "Test event delivered: HTTP 200." in tested
        payload = Webhook(new_secret).verify(receiver.requests[0][1], receiver.requests[0][0])
        assert payload["type"] == "webhook.test" and payload["data"]["project_id"] == project_id
        receiver.status = 503
        failed = admin.post(f"/projects/{project_id}/webhook-test", headers=HTMX).get_data(as_text=True)
        assert "Test event failed: HTTP 503" in failed
    finally:
        receiver.server.shutdown()
    tests = events(session, "project.webhook_tested")
    assert [e.details["status_code"] for e in tests] == [200, 503] and tests[0].details["url"] == receiver.url


def test_members_are_edited_on_the_page(app, client, admin_token, make_user, make_project):
    project_id = make_project(n=1)
    make_user("ann", "annotator")
    make_user("rev", "reviewer")
    admin = logged_in(app, "admin")
    url = f"/projects/{project_id}/members"
    unknown = admin.post(url, data={"new_user": "ghost", "new_role": "annotator"})
    assert unknown.status_code == 422
    assert 'data-testid="error-new_user">no user named &#39;ghost&#39;<' in unknown.get_data(as_text=True)
    admin.post(url, data={"new_user": "ann", "new_role": "annotator"})
    admin.post(url, data={"member": "ann", "role:ann": "reviewer", "new_user": "rev", "new_role": "annotator"})
    members = client.get(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token)).json["members"]
    assert members == [{"user": "ann", "role": "reviewer"}, {"user": "rev", "role": "annotator"}]
    page = admin.post(url, data={"member": ["ann", "rev"], "role:ann": "remove", "role:rev": "remove"}).get_data(as_text=True)
    assert "Open to every user." in page
    assert client.get(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token)).json["members"] == []


def test_archive_and_delete_from_the_page(app, client, admin_token, make_user, make_project, session):
    project_id = make_project(n=2)
    make_user("ann", "annotator")
    name = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["name"]
    admin, ann = logged_in(app, "admin"), logged_in(app, "ann")
    archived = admin.post(f"/projects/{project_id}/archive", data={"archived": "1"}).get_data(as_text=True)
    assert "Archived: read-only" in archived and "Unarchive" in archived
    assert name not in ann.get("/").get_data(as_text=True) and name in admin.get("/").get_data(as_text=True)
    refused = ann.get(f"/projects/{project_id}/label").get_data(as_text=True)
    assert "This project is archived:</strong> it is read-only" in refused and 'class="labeling"' not in refused
    admin.post(f"/projects/{project_id}/archive", data={"archived": "0"})
    assert name in ann.get("/").get_data(as_text=True)

    wrong = admin.post(f"/projects/{project_id}/delete", data={"confirm": name + "x"})
    assert wrong.status_code == 422 and 'data-testid="error-confirm">does not match' in wrong.get_data(as_text=True)
    assert 'name="confirm" autocomplete="off" required autofocus' in wrong.get_data(as_text=True)  # scrolled to
    done = admin.post(f"/projects/{project_id}/delete", data={"confirm": name})
    assert done.status_code == 302 and done.location.endswith("/")
    index = admin.get("/").get_data(as_text=True)
    assert f"Project &#39;{name}&#39; and everything of it were deleted." in index
    assert admin.get(f"/projects/{project_id}").status_code == 404
    assert [e.details["name"] for e in events(session, "project.deleted")] == [name]


def test_the_advanced_settings_are_edited_on_the_page_and_open_on_an_error(app, make_user, make_project, session):
    project_id = make_project(n=1)
    admin = logged_in(app, "admin")
    url = f"/projects/{project_id}/settings"
    page = admin.get(url).get_data(as_text=True)
    advanced = re.search(r'<details class="advanced"[^>]*>', page).group(0)
    assert " open" not in advanced and 'name="queue_seed" inputmode="numeric" value=""' in page
    # The whole form as a browser sends it: unchanged fields do not count as changes.
    same = {"random_share": "0.05", "diverse_batches": "true", "typical_picks": "true", "promotion_metric": "macro_f1",
            "queue_seed": ""}
    assert "Nothing changed." in admin.post(url, data=same).get_data(as_text=True)
    saved = admin.post(url, data={**same, "random_share": "0.2", "diverse_batches": "false", "promotion_metric": "accuracy",
                                  "queue_seed": "7"}).get_data(as_text=True)
    assert "Saved: diverse_batches, promotion_metric, queue_seed, random_share." in saved
    settings = stored_settings(session, project_id)
    assert (settings["random_share"], settings["diverse_batches"], settings["promotion_metric"], settings["queue_seed"]) == (
        0.2, False, "accuracy", 7)
    assert '<option value="false" selected>off</option>' in saved and 'name="queue_seed" inputmode="numeric" value="7"' in saved
    assert "Saved: queue_seed." in admin.post(url, data={"queue_seed": ""}).get_data(as_text=True)
    assert stored_settings(session, project_id)["queue_seed"] in ("", None)
    bad = admin.post(url, data={"random_share": "2", "typical_picks": "maybe"})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 422 and re.search(r'<details class="advanced"[^>]*open', body)
    assert 'data-testid="error-random_share"' in body and 'data-testid="error-typical_picks">must be true or false<' in body
    assert stored_settings(session, project_id)["random_share"] == 0.2


def test_a_featurizer_that_cannot_read_the_projects_examples_is_refused_beside_its_field(app, client, admin_token,
                                                                                          make_project, session):
    text_project = make_project(n=3)
    admin = logged_in(app, "admin")
    for featurizer, says in (("numeric", "numeric meta fields"), ("features", "features vector")):
        refused = admin.post(f"/projects/{text_project}/settings", data={"featurizer": featurizer})
        assert refused.status_code == 422
        assert re.search(rf'data-testid="error-featurizer">&#39;{featurizer}&#39; reads each example&#39;s {says}',
                         refused.get_data(as_text=True))
    assert stored_settings(session, text_project)["featurizer"] == "auto"
    assert admin.post(f"/projects/{text_project}/settings", data={"featurizer": "tfidf"}).status_code == 200
    vectors = make_project(examples=[{"external_id": f"v{i}", "features": [i, 1.0]} for i in range(3)])
    api = client.patch(f"/api/v1/projects/{vectors}", headers=auth(admin_token), json={"settings": {"featurizer": "tfidf"}})
    assert api.status_code == 422 and api.json["errors"][0]["field"] == "featurizer"
    assert client.patch(f"/api/v1/projects/{vectors}", headers=auth(admin_token),
                        json={"settings": {"featurizer": "features"}}).status_code == 200
    empty = make_project(n=0)  # nothing to read yet: any featurizer is taken
    assert client.patch(f"/api/v1/projects/{empty}", headers=auth(admin_token),
                        json={"settings": {"featurizer": "numeric"}}).status_code == 200


def test_a_project_is_renamed_and_gets_new_labels_on_the_page_and_through_the_api(app, client, admin_token, make_user,
                                                                                   make_project, session):
    project_id = make_project(n=2)
    assert client.post("/api/v1/projects", headers=auth(admin_token), json={"name": "Taken", "labels": ["a", "b"]}).status_code == 201
    session.rollback()
    first_name = session.get(Project, project_id).name
    admin = logged_in(app, "admin")
    url = f"/projects/{project_id}/settings/name-and-labels"
    taken = admin.post(url, data={"name": "Taken", "add_labels": "meh"})
    assert taken.status_code == 422 and 'data-testid="error-name">a project named &#39;Taken&#39; exists already' in \
        taken.get_data(as_text=True)
    session.rollback()
    assert [l["name"] for l in session.get(Project, project_id, populate_existing=True).labels] == ["pos", "neg"]
    done = admin.post(url, data={"name": "Reviews v2", "add_labels": "meh, pos,  unsure "}, headers=HTMX)
    assert "Renamed to &#39;Reviews v2&#39;. Added meh, unsure (keys: 3, 4). Already in the set: pos." in done.get_data(as_text=True)
    session.rollback()
    project = session.get(Project, project_id, populate_existing=True)
    assert project.name == "Reviews v2" and [l["hotkey"] for l in project.labels] == ["1", "2", "3", "4"]
    assert [e.details for e in events(session, "project.labels_added")] == [{"labels": ["meh", "unsure"]}]
    assert events(session, "project.renamed")[-1].details == {"from": first_name}
    _, token = make_user("ann")
    lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                       json={"example_id": lease["example"]["id"], "label": "unsure"}).status_code in (200, 201)
    api = client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"add_labels": ["a|b"], "name": "x"})
    assert api.status_code == 200 and api.json["name"] == "x"  # a single-label project takes any name
    bad = client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"add_labels": "oops"})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "add_labels"
