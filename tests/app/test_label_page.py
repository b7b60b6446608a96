"""The labeling page in words an annotator can read: why an example is served, and why none is."""

import pytest
from sqlalchemy import update

from labeling.models import Example


@pytest.mark.parametrize("priority, version, said", [
    (1.5, 1, "Why this example: the model was unsure of it when it ordered the queue, one of the next batch's picks, spread across the pool "
             "(margin), model v1."),
    (0.4, 1, "Why this example: the model was unsure of it when it ordered the queue (margin, score 0.400), model v1."),
    (0.4, None, "Why this example: a typical example, to start the first model (cold start), no model yet."),
])
def test_why_an_example_is_served_in_plain_words(app, client, make_user, make_project, priority, version, said):
    """A batch pick's queue priority (1.5) is not shown as a score; the strategy's name comes after the reason."""
    project_id = make_project(n=1, settings={"holdout_fraction": 0, "random_share": 0})
    with app.extensions["hitl_sessionmaker"]() as s:  # as if model v1 had scored the pool
        s.execute(update(Example).values(priority=priority, scored_by_version=version, predicted_label="pos",
                                         confidence=0.6))
        s.commit()
    make_user("ann", "annotator")
    client.post("/login", data={"name": "ann", "password": "correct horse"})
    page = client.get(f"/projects/{project_id}/label").get_data(as_text=True)
    text = " ".join(page.split())
    assert said in text, text[text.find("Why this"):][:300]


def test_an_archived_project_says_so_instead_of_a_conflict(client, make_user, make_project, admin_token):
    from tests.conftest import auth

    project_id = make_project(n=2)
    assert client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"archived": True}).status_code == 200
    make_user("boss", "admin")
    client.post("/login", data={"name": "boss", "password": "correct horse"})
    page = client.get(f"/projects/{project_id}/label")
    text = " ".join(page.get_data(as_text=True).split())
    assert page.status_code == 200 and "This project is archived:</strong> it is read-only" in text
    assert f'href="/projects/{project_id}/settings"' in text and "form class=\"labeling" not in text
    assert "Check again" not in text


def test_an_empty_project_points_the_admin_to_the_import_page(client, make_user, make_project):
    project_id = make_project(n=0)
    make_user("boss", "admin")
    client.post("/login", data={"name": "boss", "password": "correct horse"})
    text = client.get(f"/projects/{project_id}/label").get_data(as_text=True)
    assert "This project has no examples yet." in text and f'href="/projects/{project_id}/import">Import a file</a>' in text


def test_a_large_projects_labeled_count_is_reused_for_a_few_seconds(client, make_user, make_project, monkeypatch):
    """From EXACT_LABELED_BELOW labeled examples on, the line reuses its count for a while rather
    than counting on every keypress (made small here: the real one is 50,000)."""
    from app.ui import label as label_page
    from tests.conftest import auth

    monkeypatch.setattr(label_page, "EXACT_LABELED_BELOW", 2)
    project_id = make_project(n=4, settings={"holdout_fraction": 0})
    _, token = make_user("ann", "annotator")
    client.post("/login", data={"name": "ann", "password": "correct horse"})

    def label_one_by_api() -> None:
        served = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json["example"]
        assert client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                           json={"example_id": served["id"], "label": "pos"}).status_code == 201

    def line() -> str:
        page = " ".join(client.get(f"/projects/{project_id}/label").get_data(as_text=True).split())
        return page.split('data-testid="progress">')[1].split(" labeled")[0].strip()

    label_one_by_api()
    assert line() == "1 / 4"  # below the bar: counted afresh, nothing kept
    label_one_by_api()
    assert line() == "2 / 4"  # at the bar: counted, and kept
    label_one_by_api()
    assert line() == "2 / 4"  # reused
    monkeypatch.setattr(label_page, "LABELED_REUSE_SECONDS", 0.0)
    assert line() == "3 / 4"  # reuse over: counted again


def test_a_warning_given_to_an_api_client_is_not_asked_again_on_the_page(app, client, make_user, make_project):
    from tests.conftest import auth

    project_id = make_project(n=2, settings={"holdout_fraction": 0, "random_share": 0})
    with app.extensions["hitl_sessionmaker"]() as s:  # as if the champion were sure every example is "pos"
        s.execute(update(Example).values(predicted_label="pos", confidence=0.97, scored_by_version=1))
        s.commit()
    _, token = make_user("ann", "annotator")
    served = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json["example"]
    answer = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                         json={"example_id": served["id"], "label": "neg"}).json
    assert answer["warning"]["suggested"] == "pos"
    client.post("/login", data={"name": "ann", "password": "correct horse"})
    page = client.get(f"/projects/{project_id}/label").get_data(as_text=True)
    assert 'data-testid="warning"' not in page and 'class="labeling"' in page


def test_examples_i_skipped_come_back_when_i_ask_from_the_empty_queue(client, make_user, make_project):
    """A lone annotator who skipped an example is not stuck at "nothing left" with it unlabeled."""
    import re

    project_id = make_project(n=2, settings={"holdout_fraction": 0})
    make_user("ann", "annotator")
    make_user("bob", "annotator")
    client.post("/login", data={"name": "ann", "password": "correct horse"})

    def served(html):
        found = re.search(r'data-example-id="(\d+)"', html)
        return found and found.group(1)

    first = served(client.get(f"/projects/{project_id}/label").get_data(as_text=True))
    second = served(client.post(f"/projects/{project_id}/label/skip", data={"example_id": first}).get_data(as_text=True))
    assert second and second != first
    empty = client.post(f"/projects/{project_id}/label/submit", data={"example_id": second, "label": "pos"}).get_data(as_text=True)
    text = " ".join(empty.split())
    assert "Nothing left for you to label" in text and "You skipped 1 example that still needs a label." in text
    back = client.post(f"/projects/{project_id}/label/unskip").get_data(as_text=True)
    assert served(back) == first and "1 skipped example back in your queue." in back
    client.post("/logout")
    client.post("/login", data={"name": "bob", "password": "correct horse"})  # another's skips are not bob's to undo
    assert 'data-testid="skipped"' not in client.get(f"/projects/{project_id}/label").get_data(as_text=True)


def test_backspace_walks_back_through_my_labels_one_at_a_time(client, make_user, make_project):
    """Each undo offers the label before it, so three mistakes in a row take three undos."""
    import re

    project_id = make_project(n=4, settings={"holdout_fraction": 0})
    make_user("ann", "annotator")
    client.post("/login", data={"name": "ann", "password": "correct horse"})

    def shown(html):
        example = re.search(r'data-example-id="(\d+)"', html)
        undo = re.search(r'"label_id": "(\d+)"', html)
        return example and example.group(1), undo and undo.group(1)

    example, _ = shown(client.get(f"/projects/{project_id}/label").get_data(as_text=True))
    labeled = []
    for value in ("pos", "neg", "pos"):
        labeled.append(example)
        example, undo = shown(client.post(f"/projects/{project_id}/label/submit",
                                          data={"example_id": example, "label": value}).get_data(as_text=True))
    for back_to in reversed(labeled):
        html = client.post(f"/projects/{project_id}/label/undo", data={"label_id": undo, "example_id": example}).get_data(as_text=True)
        example, undo = shown(html)
        assert example == back_to and "Label undone." in html
    assert undo is None  # nothing of mine is left to undo


def test_undo_onto_an_example_another_annotator_holds_serves_the_next_one(app, client, make_user, make_project):
    """With overlap 2 the example I undo may be leased to someone else by then: I get another."""
    import re

    from labeling import queue
    from labeling.db import utcnow
    from labeling.models import Project, User

    project_id = make_project(n=3, settings={"holdout_fraction": 0, "overlap": 2})
    make_user("ann", "annotator")
    make_user("bob", "annotator")
    client.post("/login", data={"name": "ann", "password": "correct horse"})
    first = re.search(r'data-example-id="(\d+)"', client.get(f"/projects/{project_id}/label").get_data(as_text=True)).group(1)
    html = client.post(f"/projects/{project_id}/label/submit", data={"example_id": first, "label": "pos"}).get_data(as_text=True)
    label_id, shown = re.search(r'"label_id": "(\d+)"', html).group(1), re.search(r'data-example-id="(\d+)"', html).group(1)
    with app.extensions["hitl_sessionmaker"]() as s:  # bob takes the example ann labeled
        bob = s.query(User).filter_by(name="bob").one()
        assert queue.lease_example(s, s.get(Project, project_id), bob, int(first), now=utcnow(), lease_seconds=600)
        s.commit()
    html = client.post(f"/projects/{project_id}/label/undo", data={"label_id": label_id, "example_id": shown}).get_data(as_text=True)
    assert "another annotator is labeling that example now" in html and "Nothing left for you" not in html
    assert re.search(r'data-example-id="(\d+)"', html).group(1) not in (None, first)
