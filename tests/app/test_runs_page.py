"""The training page: runs and model versions as a person reads them."""

from labeling.db import utcnow
from labeling.models import ModelVersion


def pages_with_versions(client, make_user, make_project, session, versions) -> list[str]:
    """The training page and the dashboard of a project holding ``versions`` (status, accuracy,
    holdout size), as an admin sees them."""
    project_id = make_project(n=3)
    for number, (status, accuracy, n_holdout) in enumerate(versions, start=1):
        session.add(ModelVersion(project_id=project_id, version=number, status=status, trained_at=utcnow(), n_labels=20,
                                 metrics={"accuracy": accuracy, "macro_f1": accuracy, "n_holdout": n_holdout,
                                          "decision": "promoted"},
                                 artifact=b"x", artifact_sha256="0"))
    session.commit()
    make_user("boss", "admin")
    client.post("/login", data={"name": "boss", "password": "correct horse"})
    return [client.get(f"/projects/{project_id}/{page}").get_data(as_text=True) for page in ("runs", "dashboard")]


def test_a_holdout_score_is_shown_with_the_size_of_its_holdout(client, make_user, make_project, session):
    """0.000 on 2 labels is not a model that is always wrong: the page says how many labels judged it."""
    for html in pages_with_versions(client, make_user, make_project, session, [("champion", 0.0, 2)]):
        assert '0.000 <span class="help">on 2</span>' in html


def test_a_champion_that_was_replaced_reads_former_champion(client, make_user, make_project, session):
    """The API's status is ``candidate`` (a former champion, docs/api.md); the pages say what it means."""
    versions = [("candidate", 0.5, 4), ("champion", 0.5, 4)]
    for html in pages_with_versions(client, make_user, make_project, session, versions):
        assert "<td>former champion</td>" in html and "<td>candidate</td>" not in html


def test_a_promoted_version_shows_the_champion_of_the_time_on_the_same_holdout(client, make_user, make_project, session):
    """v2 read 1.000 on 18 labels, v3 0.947 on 19 and was promoted: the page says v2 scored 0.941 on v3's holdout."""
    project_id = make_project(n=3)
    for number, accuracy, champion in ((1, 1.0, None), (2, 0.947, {"accuracy": 0.9407, "macro_f1": 0.93})):
        session.add(ModelVersion(project_id=project_id, version=number, status="champion" if champion else "candidate",
                                 trained_at=utcnow(), n_labels=20, artifact=b"x", artifact_sha256="0",
                                 metrics={"accuracy": accuracy, "macro_f1": accuracy, "n_holdout": 19, "champion": champion}))
    session.commit()
    make_user("boss", "admin")
    client.post("/login", data={"name": "boss", "password": "correct horse"})
    html = client.get(f"/projects/{project_id}/runs").get_data(as_text=True)
    assert html.count('data-testid="champion-then"') == 1 and "(the champion then: 0.941 on the same)" in html
