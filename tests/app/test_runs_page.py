"""The training page: runs and model versions as a person reads them."""

from labeling.db import utcnow
from labeling.models import ModelVersion


def test_a_holdout_score_is_shown_with_the_size_of_its_holdout(client, make_user, make_project, session):
    """0.000 on 2 labels is not a model that is always wrong: the page says how many labels judged it."""
    project_id = make_project(n=3)
    session.add(ModelVersion(project_id=project_id, version=1, status="champion", trained_at=utcnow(), n_labels=20,
                             metrics={"accuracy": 0.0, "macro_f1": 0.0, "n_holdout": 2, "decision": "first model"},
                             artifact=b"x", artifact_sha256="0"))
    session.commit()
    make_user("boss", "admin")
    client.post("/login", data={"name": "boss", "password": "correct horse"})
    for page in (f"/projects/{project_id}/runs", f"/projects/{project_id}/dashboard"):
        html = client.get(page).get_data(as_text=True)
        assert '0.000 <span class="help">on 2</span>' in html, page


def test_a_champion_that_was_replaced_reads_former_champion(client, make_user, make_project, session):
    """The API's status is ``candidate`` (a former champion, docs/api.md); the pages say what it means."""
    project_id = make_project(n=3)
    for version, status in ((1, "candidate"), (2, "champion")):
        session.add(ModelVersion(project_id=project_id, version=version, status=status, trained_at=utcnow(), n_labels=20,
                                 metrics={"accuracy": 0.5, "macro_f1": 0.5, "n_holdout": 4, "decision": "promoted"},
                                 artifact=b"x", artifact_sha256="0"))
    session.commit()
    make_user("boss", "admin")
    client.post("/login", data={"name": "boss", "password": "correct horse"})
    for page in (f"/projects/{project_id}/runs", f"/projects/{project_id}/dashboard"):
        html = client.get(page).get_data(as_text=True)
        assert "<td>former champion</td>" in html and "<td>candidate</td>" not in html, page
