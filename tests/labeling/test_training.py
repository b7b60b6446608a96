"""Retraining end to end through the API: threshold, promotion, re-scoring, prediction."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sqlalchemy import func, select

from labeling.models import Example, ExampleEmbedding, Label, ModelVersion, Project, RetrainRun
from tests.conftest import auth


def digits_rows(n, *, labeled=0, offset=0):
    digits = load_digits()
    rows = []
    for i in range(offset, offset + n):
        row = {"external_id": f"d{i}", "features": digits.data[i].tolist()}
        if i - offset < labeled:
            row["label"] = str(int(digits.target[i]))
        rows.append(row)
    return rows


LABELS = tuple(str(d) for d in range(10))


def test_import_with_labels_trains_a_champion_and_rescores_the_pool(client, admin_token, make_project, make_user, session):
    project_id = make_project(labels=LABELS, examples=digits_rows(600, labeled=300),
                              settings={"retrain_threshold": 300, "holdout_fraction": 0.2})
    runs = client.get(f"/api/v1/projects/{project_id}/runs", headers=auth(admin_token)).json["runs"]
    assert len(runs) == 1 and runs[0]["status"] == "succeeded" and runs[0]["model_version"] == 1
    models = client.get(f"/api/v1/projects/{project_id}/models", headers=auth(admin_token)).json["models"]
    assert models[0]["status"] == "champion" and models[0]["n_labels"] == 300
    assert models[0]["metrics"]["accuracy"] > 0.85 and models[0]["snapshot"] == 1
    unscored = session.scalar(select(func.count()).where(Example.needs_labels, Example.scored_by_version.is_(None)))
    labeled_scored = session.scalar(select(func.count()).where(~Example.needs_labels, Example.scored_by_version.is_not(None)))
    assert unscored == 0 and labeled_scored == 0
    _, token = make_user("ann")
    body = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert body["why"]["model_version"] == 1
    assert body["why"]["strategy"] in ("margin", "random", "holdout")


def test_crossing_the_threshold_through_the_api_makes_exactly_one_run(client, admin_token, make_project, make_user, session):
    project_id = make_project(labels=LABELS, examples=digits_rows(60), settings={"retrain_threshold": 5})
    _, token = make_user("ann")
    before = session.scalar(select(func.count()).select_from(RetrainRun))
    session.rollback()  # end the read: the next one sees what the app wrote since
    for _ in range(12):
        lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        label = str(load_digits().target[int(lease["example"]["external_id"][1:])])
        client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                    json={"example_id": lease["example"]["id"], "label": label})
    triggered = session.scalars(select(RetrainRun).where(RetrainRun.trigger == "threshold")).all()
    assert before == 1  # the cold-start run after the import
    assert [r.status for r in triggered] == ["succeeded", "succeeded"]  # labels 5 and 10


def test_a_worse_candidate_is_rejected_and_the_champion_keeps_serving(client, admin_token, make_project, session):
    project_id = make_project(labels=LABELS, examples=digits_rows(800, labeled=800),
                              settings={"retrain_threshold": 100000, "holdout_fraction": 0.3})
    champion = session.scalar(select(ModelVersion).where(ModelVersion.status == "champion"))
    assert champion.version == 1
    # Shuffle the training labels (not the holdout): a new, wrong label event on each.
    rng = np.random.default_rng(0)
    train_labels = session.execute(
        select(Label.id, Label.example_id).join(Example, Example.id == Label.example_id).where(~Example.in_holdout)
    ).all()
    for label_id, example_id in train_labels:
        session.add(Label(project_id=project_id, example_id=example_id, value=str(rng.integers(10)),
                          replaces_id=label_id, source="test-shuffle", created_at=champion.trained_at))
    session.commit()
    response = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token))
    assert response.status_code == 202
    run = client.get(f"/api/v1/runs/{response.json['run_id']}", headers=auth(admin_token)).json
    assert run["status"] == "succeeded" and run["model_version"] == 2
    assert run["result"]["promoted"] is False and "vs champion" in run["result"]["decision"]
    project = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json
    assert project["champion_model_version"] == 1
    statuses = {m["version"]: m["status"] for m in client.get(f"/api/v1/projects/{project_id}/models",
                                                              headers=auth(admin_token)).json["models"]}
    assert statuses == {1: "champion", 2: "rejected"}


def test_a_retrain_on_the_champions_own_labels_and_pool_keeps_the_champion(client, admin_token, make_project):
    """"Retrain now" with nothing new trains the same model: it is recorded, not promoted; a
    label, or a new example (the vocabulary is fit on the pool), makes the next one eligible."""
    project_id = make_project(labels=LABELS, examples=digits_rows(300, labeled=200), settings={"retrain_threshold": 100000})
    headers = auth(admin_token)

    def retrain():
        run_id = client.post(f"/api/v1/projects/{project_id}/retrain", headers=headers).json["run_id"]
        return client.get(f"/api/v1/runs/{run_id}", headers=headers).json["result"]

    same = retrain()
    assert same["promoted"] is False and "same 200 labels" in same["decision"] and "champion stays" in same["decision"]
    assert client.get(f"/api/v1/projects/{project_id}", headers=headers).json["champion_model_version"] == 1
    client.post(f"/api/v1/projects/{project_id}/examples", headers=headers, json={"examples": digits_rows(5, offset=300)})
    grown = retrain()
    assert "same" not in grown["decision"] and grown["promoted"] is True


def test_a_new_strategy_rescores_the_pool_even_when_the_new_model_is_rejected(client, admin_token, make_project,
                                                                              session):
    project_id = make_project(labels=LABELS, examples=digits_rows(700, labeled=400),
                              settings={"retrain_threshold": 100000, "holdout_fraction": 0.3, "diverse_batches": False})
    champion = session.scalar(select(ModelVersion).where(ModelVersion.status == "champion"))
    rng = np.random.default_rng(0)  # wrong training labels: the next candidate is rejected
    for label_id, example_id in session.execute(select(Label.id, Label.example_id).join(
            Example, Example.id == Label.example_id).where(~Example.in_holdout)).all():
        session.add(Label(project_id=project_id, example_id=example_id, value=str(rng.integers(10)),
                          replaces_id=label_id, source="test-shuffle", created_at=champion.trained_at))
    session.commit()
    pool = select(Example.id, Example.priority).where(Example.needs_labels).order_by(Example.id)
    before = dict(session.execute(pool).all())
    session.rollback()
    headers = auth(admin_token)
    patched = client.patch(f"/api/v1/projects/{project_id}", headers=headers, json={"settings": {"overlap": 1}})
    assert patched.status_code == 200  # no new strategy: no run
    assert len(client.get(f"/api/v1/projects/{project_id}/runs", headers=headers).json["runs"]) == 1
    patched = client.patch(f"/api/v1/projects/{project_id}", headers=headers, json={"settings": {"strategy": "entropy"}})
    assert patched.status_code == 200
    run = client.get(f"/api/v1/projects/{project_id}/runs", headers=headers).json["runs"][0]
    assert (run["trigger"], run["status"], run["result"]["promoted"]) == ("strategy", "succeeded", False)
    assert run["result"]["rescored"] == len(before) == 300
    after = dict(session.execute(pool).all())
    assert sum(after[i] != before[i] for i in before) > 250  # entropy's scores, from the champion
    assert session.scalar(select(func.count()).where(Example.needs_labels, Example.scored_by_version != 1)) == 0


def test_predict_and_enqueue_uncertain(client, admin_token, make_project, session):
    digits = load_digits()
    project_id = make_project(labels=LABELS, examples=digits_rows(400, labeled=400))
    response = client.post(f"/api/v1/projects/{project_id}/predict", headers=auth(admin_token), json={
        "examples": [{"features": digits.data[i].tolist(), "external_id": f"new{i}"} for i in range(1500, 1530)],
        "enqueue_uncertain": True, "uncertain_below": 0.99})
    assert response.status_code == 200
    body = response.json
    assert body["model_version"] == 1 and len(body["predictions"]) == 30
    correct = sum(p["label"] == str(digits.target[1500 + i]) for i, p in enumerate(body["predictions"]))
    assert correct >= 24
    assert abs(sum(body["predictions"][0]["probabilities"].values()) - 1) < 1e-4
    assert body["enqueued"] == session.scalar(select(func.count()).where(Example.external_id.like("new%"))) > 0
    # Queued with the model's top labels, the labeling page's suggestion (labeling/suggestions.py).
    for predicted, probs in session.execute(select(Example.predicted_label, Example.suggestion_probs)
                                            .where(Example.external_id.like("new%"))):
        assert len(probs) == 3 and next(iter(probs)) == predicted
    # Queued examples are checked as an import's rows are: a vector of the wrong length is a 422
    # naming its position, and nothing is queued.
    bad = client.post(f"/api/v1/projects/{project_id}/predict", headers=auth(admin_token), json={
        "examples": [{"features": digits.data[1600].tolist()}, {"features": [1.0, 2.0], "text": "x"}],
        "enqueue_uncertain": True, "uncertain_below": 1.0})
    assert bad.status_code == 422 and any(e["line"] == 2 and e["field"] == "features" for e in bad.json["errors"])


def test_predict_refuses_a_string_for_a_boolean_or_a_text_and_writes_nothing(client, admin_token, make_project, session):
    project_id = make_project(labels=LABELS, examples=digits_rows(60, labeled=60))
    url, headers = f"/api/v1/projects/{project_id}/predict", auth(admin_token)
    before = session.scalar(select(func.count()).select_from(Example))
    row = {"features": load_digits().data[1700].tolist(), "external_id": "maybe"}
    for bad in ("false", "yes", 0):  # each truthy or falsy in Python; only JSON booleans count
        response = client.post(url, headers=headers, json={"examples": [row], "enqueue_uncertain": bad, "uncertain_below": 1})
        assert response.status_code == 422 and response.json["errors"][0]["field"] == "enqueue_uncertain"
    response = client.post(url, headers=headers, json={"examples": [{"text": 5}]})
    assert response.status_code == 422 and response.json["errors"][0] == {"field": "text", "line": 1, "message": "must be a string"}
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(Example)) == before


def test_predict_before_any_model_is_409(client, admin_token, make_project):
    project_id = make_project(n=3)
    response = client.post(f"/api/v1/projects/{project_id}/predict", headers=auth(admin_token),
                           json={"examples": [{"text": "hello"}]})
    assert response.status_code == 409 and "no model" in response.json["error"]


def _write_lock_free(db_url):
    """Whether no connection holds the SQLite writers' file lock now (always, on PostgreSQL)."""
    import fcntl
    import os

    from sqlalchemy.engine import make_url

    if not db_url.startswith("sqlite"):
        return True
    fd = os.open(make_url(db_url).database + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another open of the file: blocked while a writer holds it
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


# SQLAlchemy ignores ``read_only`` asked of a session that holds a connection already, and says so:
# the read then runs in the open transaction, on SQLite a writer's, under the write lock.
@pytest.mark.filterwarnings("error:Connection is already established:sqlalchemy.exc.SAWarning")
@pytest.mark.parametrize("featurizer", ["tfidf", "tfidf_embeddings"])
def test_a_cold_start_reads_read_only_and_seeds_holding_no_lock(client, admin_token, make_project, db_url,
                                                                 monkeypatch, featurizer):
    from labeling import rescoring

    seeded_unlocked = []
    real = rescoring.cold_start_order

    def seeding(X, **kwargs):
        seeded_unlocked.append(_write_lock_free(db_url))
        return real(X, **kwargs)

    monkeypatch.setattr(rescoring, "cold_start_order", seeding)
    project_id = make_project(n=30, settings={"featurizer": featurizer})
    run = client.get(f"/api/v1/projects/{project_id}/runs?limit=1", headers=auth(admin_token)).json["runs"][0]
    assert run["status"] == "succeeded" and "typical examples first" in run["result"]["skipped"], run
    assert seeded_unlocked == [True]


def test_the_ranked_batch_is_chosen_holding_no_lock(client, admin_token, make_project, db_url, monkeypatch):
    from labeling import rescoring

    chosen_unlocked = []
    real = rescoring.rank_batch

    def ranking(*args, **kwargs):
        chosen_unlocked.append(_write_lock_free(db_url))
        return real(*args, **kwargs)

    monkeypatch.setattr(rescoring, "rank_batch", ranking)
    project_id = make_project(labels=LABELS, examples=digits_rows(300, labeled=100),
                              settings={"retrain_threshold": 100000, "strategy": "batch"})
    assert client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).status_code == 202
    assert chosen_unlocked and all(chosen_unlocked), chosen_unlocked


def test_labels_a_queued_run_trains_on_do_not_count_towards_the_next_threshold(app, client, admin_token, make_project,
                                                                                session):
    from labeling.db import utcnow
    from labeling.runs import execute_run, new_labels_since_mark, request_retrain

    project_id = make_project(n=20, settings={"retrain_threshold": 5, "holdout_fraction": 0, "random_share": 0})
    run, created = request_retrain(session, session.get(Project, project_id), trigger="manual", now=utcnow())
    session.commit()
    assert created
    for i in range(6):  # given while the run waits in the queue: folded into it
        lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(admin_token)).json
        client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(admin_token),
                    json={"example_id": lease["example"]["id"], "label": ("pos", "neg")[i % 2]})
    assert execute_run(app.extensions["hitl_sessionmaker"], run.id) == "succeeded"
    session.expire_all()
    assert session.get(RetrainRun, run.id).result["n_labels"] == 6
    assert new_labels_since_mark(session, session.get(Project, project_id)) == 0
    lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(admin_token)).json
    client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(admin_token),
                json={"example_id": lease["example"]["id"], "label": "pos"})
    assert session.scalar(select(func.count()).where(RetrainRun.project_id == project_id, RetrainRun.trigger == "threshold")) == 0


def test_a_run_is_executed_once_even_if_dispatched_twice(app, client, admin_token, make_project, session):
    from labeling.runs import execute_run

    project_id = make_project(labels=LABELS, examples=digits_rows(100))
    run_id = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).json["run_id"]
    assert execute_run(app.extensions["hitl_sessionmaker"], run_id) is None  # already done inline
    assert session.scalar(select(RetrainRun.attempts).where(RetrainRun.id == run_id)) == 1


def test_scoring_a_100k_pool_updates_every_unlabeled_priority(app, session):
    from labeling import projects
    from labeling.db import utcnow
    from labeling.examples import import_examples, json_rows
    from active_learning.models import make_model
    from labeling.rescoring import rescore_pool

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100_000, 8)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    project = projects.create_project(session, "big", ["no", "yes"], {"strategy": "margin"}, now=utcnow())
    rows = [{"external_id": str(i), "features": X[i].tolist(), **({"label": ["no", "yes"][y[i]]} if i < 500 else {})}
            for i in range(len(X))]
    import_examples(session, project, json_rows(rows), now=utcnow(), random_state=0)
    session.commit()
    model = make_model("features").fit(X[:500], np.array(["no", "yes"])[y[:500]])
    scored = rescore_pool(session, project, model, 1, kind="vector")
    assert scored == 99_500
    assert session.scalar(select(func.count()).where(Example.needs_labels, Example.scored_by_version == 1)) == 99_500
    assert session.scalar(select(func.count()).where(~Example.needs_labels, Example.scored_by_version.is_not(None))) == 0
    top = session.scalars(select(Example.features).where(Example.needs_labels).order_by(Example.priority.desc()).limit(50)).all()
    assert np.mean([abs(np.frombuffer(f, dtype=np.float32)[0]) for f in top]) < 0.2  # near the boundary x0 = 0


def test_each_run_is_logged_to_mlflow_when_a_tracking_uri_is_set(app, client, admin_token, make_project, tmp_path,
                                                                   monkeypatch):
    from mlflow import MlflowClient

    from active_learning.models import load_model

    monkeypatch.chdir(tmp_path)  # MLflow's local store keeps artifacts under the working folder
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    app.config["MLFLOW_TRACKING_URI"] = tracking_uri
    project_id = make_project(labels=LABELS, examples=digits_rows(400, labeled=300),
                              settings={"retrain_threshold": 300, "holdout_fraction": 0.2})
    run = client.get(f"/api/v1/projects/{project_id}/runs", headers=auth(admin_token)).json["runs"][0]
    mlflow_run_id = client.get(f"/api/v1/runs/{run['id']}", headers=auth(admin_token)).json["result"]["mlflow_run_id"]

    mlflow = MlflowClient(tracking_uri)
    tracked = mlflow.get_run(mlflow_run_id)
    name = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["name"]
    assert mlflow.get_experiment(tracked.info.experiment_id).name == f"hitl/{name}"
    assert tracked.info.status == "FINISHED"
    assert tracked.data.params["model_version"] == "1" and tracked.data.params["n_labels"] == "300"
    assert tracked.data.params["project.retrain_threshold"] == "300"
    assert 0.85 < tracked.data.metrics["accuracy"] <= 1.0
    assert tracked.data.tags["hitl.promoted"] == "true"
    artifact = mlflow.download_artifacts(mlflow_run_id, "model/model-v1.joblib", str(tmp_path / "download"))
    stored = open(artifact, "rb").read()
    assert load_model(stored, tracked.data.tags["hitl.artifact_sha256"])  # the very bytes the service serves


def test_an_unreachable_tracking_server_does_not_fail_the_run(app, client, admin_token, make_project, caplog):
    app.config["MLFLOW_TRACKING_URI"] = "http://127.0.0.1:9/"  # discard port: nothing answers
    project_id = make_project(labels=LABELS, examples=digits_rows(200, labeled=100),
                              settings={"retrain_threshold": 100})
    run = client.get(f"/api/v1/projects/{project_id}/runs", headers=auth(admin_token)).json["runs"][0]
    assert run["status"] == "succeeded" and run["model_version"] == 1
    assert any("could not log retrain run" in r.getMessage() for r in caplog.records)


def test_random_picks_give_the_learning_curve_a_random_sampling_baseline(client, admin_token, make_project, make_user,
                                                                          session):
    from labeling import stats

    project_id = make_project(labels=LABELS, examples=digits_rows(500, labeled=100),
                              settings={"retrain_threshold": 100000, "holdout_fraction": 0.2, "random_share": 1.0})
    _, token = make_user("ann")
    target = load_digits().target
    for _ in range(80):  # with a champion and random_share 1, every pick is random (or a holdout pick)
        lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
        assert lease["why"]["strategy"] in ("random", "holdout")
        client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                    json={"example_id": lease["example"]["id"], "label": str(target[int(lease["example"]["external_id"][1:])])})
    run_id = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).json["run_id"]
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth(admin_token)).json["status"] == "succeeded"

    session.rollback()
    labeled = (Example.project_id == project_id) & (Example.n_labels > 0)
    random_train = session.scalar(select(func.count()).where(labeled, Example.random_pick, ~Example.in_holdout))
    holdout = session.scalar(select(func.count()).where(labeled, Example.in_holdout))
    assert 40 <= random_train <= 80 and not session.scalar(select(func.count()).where(labeled, Example.random_pick,
                                                                                        Example.in_holdout))
    curve = stats.learning_curve(session, project_id)
    assert curve[0]["random_accuracy"] is None  # v1 was trained on imported labels only: no random picks yet
    assert curve[-1]["random_n_labels"] == random_train + holdout
    assert 0.3 < curve[-1]["random_accuracy"] <= 1.0

    # The share the champion saw when it scored the pool (rows keep its scores after being labeled).
    champion = client.get(f"/api/v1/projects/{project_id}", headers=auth(admin_token)).json["champion_model_version"]
    scored = (Example.project_id == project_id) & (Example.scored_by_version == champion)
    unsure = session.scalar(select(func.count()).where(scored, Example.confidence < stats.UNSURE_BELOW))
    assert stats.unsure_share(session, project_id) == unsure / session.scalar(select(func.count()).where(scored))


@pytest.mark.parametrize("featurizer", ["embeddings", "tfidf_embeddings"])
def test_a_project_can_train_on_sentence_embeddings(app, client, admin_token, make_project, monkeypatch, featurizer):
    from active_learning import embeddings

    good = ["great product, love it", "excellent and useful", "works perfectly, very happy", "wonderful quality"]
    bad = ["broke after a day", "terrible and useless", "very disappointed", "awful, do not buy"]
    rows = [{"external_id": str(i), "text": t, "label": "pos" if t in good else "neg"} for i, t in enumerate((good + bad) * 5)]
    # Seeded: with fresh draws, 1.5% of imports of 40 labels put none in the 10% holdout, and
    # then no champion is judged on it (the run's decision below would say so).
    project_id = make_project(examples=rows, settings={"featurizer": featurizer, "retrain_threshold": 40,
                                                       "queue_seed": 0})
    models = client.get(f"/api/v1/projects/{project_id}/models", headers=auth(admin_token)).json["models"]
    assert models[0]["details"]["featurizer"] == featurizer
    unlabeled = [{"external_id": f"u{i}", "text": t} for i, t in enumerate(["happy with it", "a total waste"])]
    client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), json={"examples": unlabeled})
    client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token))
    # Each example is encoded once and stored; a retrain reads the store instead of encoding again.
    with app.extensions["hitl_sessionmaker"]() as s:
        stored = s.scalar(select(func.count()).select_from(ExampleEmbedding))
        predicted = dict(s.execute(select(Example.external_id, Example.predicted_label)
                                   .where(Example.external_id.in_(["u0", "u1"]))).all())
    assert stored == len(rows) + 2 and predicted == {"u0": "pos", "u1": "neg"}
    encoded = []
    real = embeddings.SentenceEmbedder.transform
    monkeypatch.setattr(embeddings.SentenceEmbedder, "transform", lambda self, texts: encoded.append(len(texts)) or real(self, texts))
    client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token))
    assert encoded == []  # the champion, judged on the holdout, reads the embeddings the run read
    runs = client.get(f"/api/v1/projects/{project_id}/runs?limit=1", headers=auth(admin_token)).json["runs"]
    latest = client.get(f"/api/v1/projects/{project_id}/models", headers=auth(admin_token)).json["models"][0]
    assert runs[0]["status"] == "succeeded" and "champion" in latest["details"]["decision"], latest["details"]
    # An import that replaces a text drops its embedding; the next run encodes that one text only.
    client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                json={"examples": [{"external_id": "u0", "text": "broke at once, useless"}], "on_duplicate": "update"})
    client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token))
    assert encoded == [1]

    monkeypatch.setattr(embeddings, "available", lambda: False)  # as on a machine without the extra
    response = client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token),
                            json={"settings": {"featurizer": featurizer}})
    assert response.status_code == 422 and "pip install -e '.[embeddings]'" in response.json["errors"][0]["message"]


def test_auto_reads_text_beside_sentence_embeddings_when_the_extra_is_installed_and_the_pool_is_small(
        client, admin_token, make_project, monkeypatch):
    from active_learning import embeddings
    from labeling import features

    good = ["great product, love it", "excellent and useful", "works perfectly, very happy", "wonderful quality"]
    bad = ["broke after a day", "terrible and useless", "very disappointed", "awful, do not buy"]
    rows = [{"external_id": str(i), "text": t, "label": "pos" if t in good else "neg"} for i, t in enumerate((good + bad) * 5)]

    def featurizer_of_a_new_project() -> str:
        project_id = make_project(examples=rows, settings={"retrain_threshold": 40})
        return client.get(f"/api/v1/projects/{project_id}/models", headers=auth(admin_token)).json["models"][0]["details"]["featurizer"]

    assert featurizer_of_a_new_project() == "tfidf_embeddings"
    monkeypatch.setattr(features, "AUTO_EMBEDDINGS_MAX_POOL", len(rows) - 1)  # a pool too large to encode
    assert featurizer_of_a_new_project() == "tfidf"
    monkeypatch.setattr(features, "AUTO_EMBEDDINGS_MAX_POOL", len(rows))
    monkeypatch.setattr(embeddings, "available", lambda: False)  # as on a machine without the extra
    assert featurizer_of_a_new_project() == "tfidf"


def test_every_write_of_a_retrain_holds_the_sqlite_write_lock(app, client, admin_token, make_project, db_url):
    """No write runs in a transaction opened read-only. On SQLite such a transaction is deferred and
    skips the file lock writers queue on, so its write fails with "database is locked" under load."""
    from sqlalchemy import event

    sqlite = db_url.startswith("sqlite")
    unlocked = []

    def check(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().split(" ", 1)[0].upper() not in ("INSERT", "UPDATE", "DELETE"):
            return
        if conn.get_execution_options().get("read_only") or (sqlite and "hitl_lock_fd" not in conn.info):
            unlocked.append(statement[:80])

    engine = app.extensions["hitl_engine"]
    event.listen(engine, "before_cursor_execute", check)
    try:
        for strategy in ("margin", "batch"):
            project_id = make_project(labels=LABELS, examples=digits_rows(300, labeled=100),
                                      settings={"retrain_threshold": 100000, "strategy": strategy})
            assert client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).status_code == 202
    finally:
        event.remove(engine, "before_cursor_execute", check)
    assert unlocked == []


def test_the_picks_until_the_next_retrain_are_spread_over_the_data(client, admin_token, make_project, session):
    from sklearn.metrics import pairwise_distances

    def top_of_queue(diverse):
        project_id = make_project(labels=LABELS, examples=digits_rows(900, labeled=300),
                                  settings={"retrain_threshold": 30, "diverse_batches": diverse})
        session.rollback()
        return session.execute(select(Example.priority, Example.features).where(
            Example.project_id == project_id, Example.needs_labels).order_by(Example.priority.desc()).limit(30)).all()

    def spread(rows):  # the mean distance from each pick to its nearest other pick
        distances = pairwise_distances(np.vstack([np.frombuffer(f, dtype=np.float32) for _, f in rows]))
        np.fill_diagonal(distances, np.inf)
        return distances.min(axis=1).mean()

    diverse, plain = top_of_queue(True), top_of_queue(False)
    assert all(1.0 < p < 2.0 for p, _ in diverse) and all(p <= 1.0 for p, _ in plain)
    # The plain top holds near neighbours (one confusable region teaches once); the diverse one fewer.
    assert spread(diverse) > 1.2 * spread(plain)
    bad = client.post("/api/v1/projects", headers=auth(admin_token),
                      json={"name": "x", "labels": ["a", "b"], "settings": {"diverse_batches": "yes"}})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "settings.diverse_batches"


def test_typical_picks_leave_outliers_the_model_is_unsure_of_for_later(make_project, session, monkeypatch):
    """Blends of two digits, smudged, are what a model is unsure of and like nothing else in the
    pool: margin alone serves them first, margin weighed by typicality serves typical rows. The
    typicality sample is cut below the pool's size, so some candidates are in it and some not.
    Three draws of blends, pooled: one draw's count moves with the CPU's floating point (per
    draw, typical picks took 0.55-0.73 of margin's outliers on an AMD EPYC, under 0.6 on the
    machine this test was written on)."""
    from labeling import rescoring

    monkeypatch.setattr(rescoring, "TYPICAL_SAMPLE", 250)
    monkeypatch.setattr(rescoring, "TYPICAL_BELOW_KAPPA", 1.01)  # as if the labels stayed ambiguous
    digits = load_digits()

    def outliers_among_the_picks(typical, draw):
        rng = np.random.default_rng(draw)
        a, b = digits.data[900:960], digits.data[960:1020]
        blends = np.clip((a + b) / 2 + rng.normal(scale=10.0, size=a.shape), 0, 16)
        outliers = [{"external_id": f"o{i}", "features": row.tolist()} for i, row in enumerate(blends)]
        project_id = make_project(labels=LABELS, examples=digits_rows(900, labeled=300) + outliers,
                                  settings={"retrain_threshold": 30, "typical_picks": typical, "queue_seed": 0})
        session.rollback()
        picks = session.scalars(select(Example.external_id).where(
            Example.project_id == project_id, Example.needs_labels, Example.priority > 1.0)).all()
        assert len(picks) == 30
        return sum(p.startswith("o") for p in picks)

    counts = [(outliers_among_the_picks(False, draw), outliers_among_the_picks(True, draw)) for draw in range(3)]
    plain, typical = (sum(side) for side in zip(*counts))
    assert all(t < p for p, t in counts), counts
    assert plain >= 24 and typical <= 0.8 * plain, counts


def test_typical_picks_stop_once_the_model_predicts_its_labels_well(make_project, session, monkeypatch):
    """Digits with 300 labels: the search's out-of-fold kappa is recorded with the version and
    clears the bar, so the picks are margin's alone, as without typical picks (with the bar
    raised above any kappa, the same project's picks change)."""
    from labeling import rescoring

    def picks(typical):
        project_id = make_project(labels=LABELS, examples=digits_rows(900, labeled=300),
                                  settings={"retrain_threshold": 30, "typical_picks": typical, "queue_seed": 0})
        session.rollback()
        kappa = session.scalar(select(ModelVersion.metrics).where(ModelVersion.project_id == project_id))["out_of_fold_kappa"]
        assert kappa > 0.8, kappa
        return sorted(session.scalars(select(Example.external_id).where(
            Example.project_id == project_id, Example.needs_labels, Example.priority > 1.0)).all())

    plain = picks(False)
    assert len(plain) == 30 and picks(True) == plain
    monkeypatch.setattr(rescoring, "TYPICAL_BELOW_KAPPA", 1.01)
    assert picks(True) != plain


@pytest.mark.parametrize("metrics, ambiguous", [({"out_of_fold_kappa": 0.2}, True), ({"out_of_fold_kappa": 0.4}, False),
                                                ({"out_of_fold_kappa": None}, False), ({}, False), (None, False)])
def test_typical_picks_wait_for_evidence_that_the_labels_are_ambiguous(metrics, ambiguous):
    """Below the bar only: too few labels to cross-validate (None), a version from before the
    kappa was recorded ({}) or no version at all give plain margin."""
    from labeling.rescoring import labels_look_ambiguous

    assert labels_look_ambiguous(metrics) is ambiguous


def test_a_text_replaced_in_place_is_in_the_next_retrains_vocabulary(app, client, admin_token, make_project, monkeypatch):
    """The pool's featurizer is cached until the pool changes: an import that replaces texts
    (same count, same newest example) changes it too."""
    from collections import OrderedDict

    from labeling import features
    from labeling.registry import unpack

    monkeypatch.setattr(features, "_cache", OrderedDict())  # nothing fitted by another test
    good = ["great product, love it", "excellent and useful", "works perfectly, very happy", "wonderful quality"]
    bad = ["broke after a day", "terrible and useless", "very disappointed", "awful, do not buy"]
    rows = [{"external_id": str(i), "text": t, "label": "pos" if t in good else "neg"} for i, t in enumerate((good + bad) * 5)]
    rows += [{"external_id": f"u{i}", "text": t} for i, t in enumerate(["happy with it", "a total waste"])]
    project_id = make_project(examples=rows, settings={"featurizer": "tfidf", "retrain_threshold": 40})

    def vocabulary() -> dict:
        with app.extensions["hitl_sessionmaker"]() as s:
            latest = s.scalars(select(ModelVersion).where(ModelVersion.project_id == project_id)
                               .order_by(ModelVersion.version.desc())).first()
            return unpack(latest)[0][0].vocabulary_

    assert "zyzzyva" not in vocabulary()
    replaced = [{"external_id": f"u{i}", "text": f"a zyzzyva, {t}"} for i, t in enumerate(["happy", "sad"])]
    response = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token),
                           json={"examples": replaced, "on_duplicate": "update"})
    assert response.status_code == 201 and response.json["updated"] == 2
    run_id = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(admin_token)).json["run_id"]
    assert client.get(f"/api/v1/runs/{run_id}", headers=auth(admin_token)).json["status"] == "succeeded"
    assert "zyzzyva" in vocabulary()  # fitted again on the pool's new texts


@pytest.mark.parametrize("featurizer", ["embeddings", "tfidf_embeddings"])
def test_predict_without_the_embeddings_extra_is_a_503_naming_it(client, admin_token, make_project, monkeypatch,
                                                                 featurizer):
    """A worker with the extra trained the champion; a web process without it cannot encode."""
    from active_learning import embeddings
    from app.api.openapi import document

    good = ["great product, love it", "excellent and useful", "works perfectly, very happy", "wonderful quality"]
    bad = ["broke after a day", "terrible and useless", "very disappointed", "awful, do not buy"]
    rows = [{"external_id": str(i), "text": t, "label": "pos" if t in good else "neg"} for i, t in enumerate((good + bad) * 5)]
    project_id = make_project(examples=rows, settings={"featurizer": featurizer, "retrain_threshold": 40})
    monkeypatch.setattr(embeddings, "available", lambda: False)  # as on a machine without the extra
    monkeypatch.setattr(embeddings, "_loaded", {})  # no encoder loaded in this process either
    response = client.post(f"/api/v1/projects/{project_id}/predict", headers=auth(admin_token),
                           json={"examples": [{"text": "a sentence nobody encoded here before"}]})
    assert response.status_code == 503, response.json
    assert featurizer in response.json["error"] and "pip install -e '.[embeddings]'" in response.json["error"]
    assert "503" in document()["paths"]["/api/v1/projects/{project_id}/predict"]["post"]["responses"]


@pytest.mark.parametrize("featurizer", ["embeddings", "tfidf_embeddings"])
def test_a_champion_that_keeps_serving_ranks_its_batch_on_stored_embeddings(client, admin_token, make_project,
                                                                           monkeypatch, featurizer):
    """The ranked batch keeps its picks away from the labeled rows: when the champion re-scores
    the pool (a new strategy, its candidate kept out), those rows come from the store too."""
    from active_learning import embeddings
    from labeling import training

    good = ["great product, love it", "excellent and useful", "works perfectly, very happy", "wonderful quality"]
    bad = ["broke after a day", "terrible and useless", "very disappointed", "awful, do not buy"]
    rows = [{"external_id": str(i), "text": t, "label": "pos" if t in good else "neg"} for i, t in enumerate((good + bad) * 5)]
    rows += [{"external_id": f"u{i}", "text": f"{t} number {i}"} for i, t in enumerate(["so happy", "a waste"] * 10)]
    project_id = make_project(examples=rows, settings={"featurizer": featurizer, "retrain_threshold": 40,
                                                       "strategy": "margin"})
    monkeypatch.setattr(training, "decide", lambda comparison, *, has_champion: (False, "kept out by the test"))
    encoded = []
    real = embeddings.SentenceEmbedder.transform
    monkeypatch.setattr(embeddings.SentenceEmbedder, "transform", lambda self, texts: encoded.append(len(texts)) or real(self, texts))
    patched = client.patch(f"/api/v1/projects/{project_id}", headers=auth(admin_token), json={"settings": {"strategy": "batch"}})
    assert patched.status_code == 200
    run = client.get(f"/api/v1/projects/{project_id}/runs?limit=1", headers=auth(admin_token)).json["runs"][0]
    assert (run["trigger"], run["status"], run["result"]["promoted"]) == ("strategy", "succeeded", False), run
    assert run["result"]["rescored"] == 20  # by the champion, with a ranked batch at the top
    assert encoded == []  # every example's embedding was stored by the first run


@pytest.mark.parametrize(("before", "after"), [("tfidf", "features"), ("features", "tfidf")])
def test_a_champion_that_keeps_serving_after_the_featurizer_changed_reads_its_own_inputs(
        client, admin_token, make_project, monkeypatch, before, after):
    """Examples with a text and a vector: the champion, trained on one, keeps serving (its
    candidate kept out) after the setting moved to the other; it is judged on the holdout, and
    re-scores the pool, from the inputs its own featurizer reads."""
    from labeling import training

    rng = np.random.default_rng(0)
    words = {"pos": ["great", "excellent", "wonderful", "happy"], "neg": ["broke", "terrible", "awful", "waste"]}

    def row(i, label, labeled):
        vector = (rng.normal(size=8) + (2.0 if label == "pos" else -2.0)).tolist()
        text = f"{words[label][i % 4]} {words[label][(i + 1) % 4]} item {i}"
        return {"external_id": str(i), "text": text, "features": vector, **({"label": label} if labeled else {})}

    rows = [row(i, "pos" if i % 2 else "neg", i < 60) for i in range(80)]
    project_id = make_project(examples=rows, settings={"featurizer": before, "retrain_threshold": 60,
                                                       "holdout_fraction": 0.3, "strategy": "margin"})
    keep_out = (training, "decide", lambda comparison, *, has_champion: (False, "kept out by the test"))
    run = _champion_kept_after_the_featurizer_moved(client, admin_token, monkeypatch, project_id, before, after,
                                                    "entropy", keep_out)
    assert run["result"]["champion_metrics"]["accuracy"] > 0.9  # judged on what it reads


def _champion_kept_after_the_featurizer_moved(client, admin_token, monkeypatch, project_id, before, after, strategy,
                                              keep_out):
    """The first run promotes a champion; then, its candidates kept out (``keep_out``: what to
    patch, as ``monkeypatch.setattr`` takes it), the
    featurizer moves to ``after`` with a strategy change: the strategy run's record, checked to have
    kept the champion (on ``before``) and re-scored the 20 unlabeled examples with it."""
    headers = auth(admin_token)
    first = client.get(f"/api/v1/projects/{project_id}/runs?limit=1", headers=headers).json["runs"][0]
    assert first["status"] == "succeeded" and first["result"]["promoted"] is True, first
    monkeypatch.setattr(*keep_out)
    patched = client.patch(f"/api/v1/projects/{project_id}", headers=headers,
                           json={"settings": {"featurizer": after, "strategy": strategy}})
    assert patched.status_code == 200
    run = client.get(f"/api/v1/projects/{project_id}/runs?limit=1", headers=headers).json["runs"][0]
    assert (run["trigger"], run["status"]) == ("strategy", "succeeded"), run["error"]
    assert run["result"]["promoted"] is False
    assert run["result"]["rescored"] == 20  # by the champion
    models = client.get(f"/api/v1/projects/{project_id}/models", headers=headers).json["models"]
    assert {m["version"]: (m["status"], m["details"]["featurizer"]) for m in models} == {
        1: ("champion", before), 2: ("rejected", after)}
    return run


@pytest.mark.parametrize(("before", "after"), [("tfidf", "features"), ("features", "tfidf")])
def test_a_multi_label_champion_that_keeps_serving_after_the_featurizer_changed_reads_its_own_inputs(
        client, admin_token, make_project, monkeypatch, before, after):
    """The multi-label case of the test above: the champion is judged on the holdout, and re-scores
    the pool, from the inputs its own featurizer reads, not from the new setting's."""
    from labeling import training_multilabel

    rng = np.random.default_rng(0)
    words = {"pos": ["great", "excellent", "wonderful", "happy"], "neg": ["broke", "terrible", "awful", "waste"],
             "loud": ["shouting", "noisy", "blaring", "roaring"], "quiet": ["silent", "calm", "hushed", "still"]}

    def row(i, labeled):
        mood, volume = ("pos" if i % 2 else "neg"), ("loud" if i % 3 == 0 else "quiet")
        signs = np.array([1.0 if mood == "pos" else -1.0] * 4 + [1.0 if volume == "loud" else -1.0] * 4)
        vector = (rng.normal(size=8) + 2.0 * signs).tolist()
        text = f"{words[mood][i % 4]} {words[volume][(i + 1) % 4]} item {i}"
        chosen = [name for name in ("pos", "loud") if name in (mood, volume)]
        return {"external_id": str(i), "text": text, "features": vector, **({"labels": chosen} if labeled else {})}

    rows = [row(i, i < 60) for i in range(80)]
    project_id = make_project(labels=("pos", "loud"), examples=rows,
                              settings={"task": "multi_label", "featurizer": before, "retrain_threshold": 60,
                                        "holdout_fraction": 0.3, "strategy": "min_confidence",
                                        "queue_seed": 0})  # the same holdout each time: 18 rows are few
    # The candidate is kept out: significantly worse by the paired bootstrap.
    keep_out = (training_multilabel, "micro_f1_difference", lambda *args, **kwargs: (-1.0, -1.0))
    run = _champion_kept_after_the_featurizer_moved(client, admin_token, monkeypatch, project_id, before, after,
                                                    "avg_confidence", keep_out)
    assert run["result"]["champion_metrics"]["micro_f1"] > 0.9  # judged on what it reads


def test_a_project_made_again_under_a_reused_id_fits_its_own_vocabulary(app, client, admin_token, make_project,
                                                                         monkeypatch):
    """SQLite gives a deleted project's id (and its examples' ids, when they were the last) to the
    next ones: the same count and newest example, other texts."""
    from collections import OrderedDict

    from labeling import features
    from labeling.registry import unpack

    monkeypatch.setattr(features, "_cache", OrderedDict())  # nothing fitted by another test

    def project_of(words: list[str]) -> tuple[int, dict]:
        rows = [{"external_id": str(i), "text": f"{w} {n}", "label": "pos" if i % 2 else "neg"}
                for i, (w, n) in enumerate((w, n) for w in words for n in ("one", "two", "three", "four"))]
        project_id = make_project(examples=rows, settings={"featurizer": "tfidf", "retrain_threshold": len(rows)})
        with app.extensions["hitl_sessionmaker"]() as s:
            model = s.scalars(select(ModelVersion).where(ModelVersion.project_id == project_id)).one()
            return project_id, unpack(model)[0][0].vocabulary_

    first, vocabulary = project_of(["apple", "banana", "cherry", "damson", "elder"])
    assert "apple" in vocabulary
    name = client.get(f"/api/v1/projects/{first}", headers=auth(admin_token)).json["name"]
    assert client.delete(f"/api/v1/projects/{first}?confirm={name}", headers=auth(admin_token)).status_code == 204
    second, vocabulary = project_of(["zebra", "yak", "xerus", "wombat", "vole"])
    assert "zebra" in vocabulary and "apple" not in vocabulary, (first, second)


def test_while_a_declared_class_has_no_label_the_next_picks_look_for_it(client, admin_token, make_project, make_user,
                                                                         session):
    digits = load_digits()
    low = [i for i in range(600) if digits.target[i] < 5][:30]  # labels of 0-4 only
    rows = digits_rows(600)
    for i in low:
        rows[i]["label"] = str(int(digits.target[i]))
    project_id = make_project(labels=LABELS, examples=rows,
                              settings={"retrain_threshold": 20, "holdout_fraction": 0.0, "random_share": 0.0})
    run = client.get(f"/api/v1/projects/{project_id}/runs?limit=1", headers=auth(admin_token)).json["runs"][0]
    assert run["status"] == "succeeded" and run["result"]["discovering"] == ["5", "6", "7", "8", "9"]
    session.rollback()
    top = session.execute(select(Example.priority, Example.external_id).where(
        Example.project_id == project_id, Example.needs_labels).order_by(Example.priority.desc()).limit(20)).all()
    assert all(2.0 < p < 3.0 for p, _ in top)  # above the model's order, until the next retrain
    found = {int(digits.target[int(e[1:])]) for _, e in top}
    # The model knows only 0-4; its most uncertain rows sit on their borders. The picks find the rest.
    assert len(found - set(range(5))) >= 4, found
    _, token = make_user("ann")
    lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
    assert lease["why"]["strategy"] == "discovery" and lease["example"]["external_id"] == top[0][1]


def test_class_discovery_stops_once_every_class_has_a_label_or_the_budget_is_spent():
    from labeling.rescoring import DISCOVERY_LABELS_PER_CLASS, classes_to_discover

    assert classes_to_discover(["a", "b", "c"], ["a", "a", "b"], 3) == ["c"]
    assert classes_to_discover(["a", "b", "c"], ["a", "b", "c"], 3) == []
    assert classes_to_discover(["a", "b", "c"], ["a"], 3 * DISCOVERY_LABELS_PER_CLASS) == []


@pytest.mark.parametrize("task_kind", ["single_label", "multi_label"])
def test_a_retrain_of_an_empty_project_says_why_it_trained_nothing(client, admin_token, task_kind):
    created = client.post("/api/v1/projects", headers=auth(admin_token),
                          json={"name": f"empty {task_kind}", "labels": ["a", "b"], "task_kind": task_kind})
    response = client.post(f"/api/v1/projects/{created.json['id']}/retrain", headers=auth(admin_token))
    run = client.get(f"/api/v1/runs/{response.json['run_id']}", headers=auth(admin_token)).json
    assert (run["status"], run["error"], run["model_version"]) == ("succeeded", None, None), run
    assert "needs at least two" in run["result"]["skipped"] or "at least two classes" in run["result"]["skipped"]


def test_a_cold_start_after_labels_of_one_class_continues_from_a_sample_of_them(client, admin_token, make_project,
                                                                               monkeypatch):
    from labeling import rescoring

    seen = []
    real = rescoring.cold_start_order

    def seeding(X, **kwargs):
        seen.append((X.shape[0], None if kwargs.get("X_labeled") is None else kwargs["X_labeled"].shape[0]))
        return real(X, **kwargs)

    monkeypatch.setattr(rescoring, "cold_start_order", seeding)
    rows = digits_rows(400)
    for row in rows[:300]:  # 300 labels, all of one class: no model can be trained yet
        row["label"] = "7"
    project_id = make_project(labels=LABELS, examples=rows)
    run = client.get(f"/api/v1/projects/{project_id}/runs?limit=1", headers=auth(admin_token)).json["runs"][0]
    assert run["status"] == "succeeded" and "typical examples first" in run["result"]["skipped"], run
    # The unlabeled rows, and the labels as covered regions: a sample of them, not all 300.
    assert seen == [(100, rescoring.COLD_START_LABELED_SAMPLE)]
