"""Browsing data in the API: every filter, pagination and the capped total, an example's history,
relabeling (a review event that keeps the old label and closes its flags), roles and access."""

from __future__ import annotations

from sqlalchemy import select, update

from labeling.db import utcnow
from labeling.models import AuditEvent, Example, Label, LabelFlag, Project
from tests.conftest import auth

ROWS = [
    {"external_id": "a-1", "text": "The Cat sat", "label": "pos"},
    {"external_id": "a-2", "text": "a dog barked", "label": "neg"},
    {"external_id": "b-3", "text": "catalogue of 100% things"},
    {"external_id": "CAT-4", "text": "nothing here"},
    {"external_id": "b-5", "text": "under_score"},
]


def browse(client, token, project_id, **args):
    return client.get(f"/api/v1/projects/{project_id}/examples", headers=auth(token), query_string=args)


def ids(response):
    assert response.status_code == 200, response.json
    return [e["external_id"] for e in response.json["examples"]]


def example_id(session, project_id, external_id):
    session.rollback()
    return session.scalar(select(Example.id).where(Example.project_id == project_id, Example.external_id == external_id))


def write(app, statement):
    s = app.extensions["hitl_sessionmaker"]()
    try:
        s.execute(statement)
        s.commit()
    finally:
        s.close()


def test_each_filter_narrows_the_examples(app, client, admin_token, make_user, make_project, session):
    project_id = make_project(examples=ROWS)
    _, ann = make_user("ann")
    labeled = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(ann), json={
        "example_id": example_id(session, project_id, "b-3"), "label": "neg"})
    assert labeled.status_code == 201
    assert ids(browse(client, admin_token, project_id)) == ["a-1", "a-2", "b-3", "CAT-4", "b-5"]
    assert ids(browse(client, admin_token, project_id, q="cat")) == ["a-1", "b-3", "CAT-4"]  # text or id, any case
    assert ids(browse(client, admin_token, project_id, q="100%")) == ["b-3"]  # LIKE wildcards are literal
    assert ids(browse(client, admin_token, project_id, q="_")) == ["b-5"]
    assert ids(browse(client, admin_token, project_id, label="neg")) == ["a-2", "b-3"]
    assert ids(browse(client, admin_token, project_id, annotator="ann")) == ["b-3"]
    assert ids(browse(client, admin_token, project_id, annotator="nobody")) == []
    assert ids(browse(client, admin_token, project_id, status="labeled")) == ["a-1", "a-2", "b-3"]
    assert ids(browse(client, admin_token, project_id, status="unlabeled")) == ["CAT-4", "b-5"]
    assert ids(browse(client, admin_token, project_id, q="cat", status="unlabeled")) == ["CAT-4"]

    a1, a2 = example_id(session, project_id, "a-1"), example_id(session, project_id, "a-2")
    label_a2 = session.scalar(select(Label.id).where(Label.example_id == a2))
    # Imported labels join the holdout at random: start from none in it.
    write(app, update(Example).where(Example.project_id == project_id).values(confidence=0.7, scored_by_version=None,
                                                                              in_holdout=False))
    write(app, update(Example).where(Example.id == a1).values(in_holdout=True, scored_by_version=1,
                                                             predicted_label="neg", confidence=0.9))
    write(app, update(Example).where(Example.id == a2).values(scored_by_version=1, predicted_label="pos",
                                                             confidence=0.55))
    s = app.extensions["hitl_sessionmaker"]()
    s.add(LabelFlag(project_id=project_id, label_id=label_a2, example_id=a2, given="neg", suggested="pos", score=0.8,
                    reason="model_disagrees", status="open", created_at=utcnow()))
    s.commit()
    s.close()
    assert ids(browse(client, admin_token, project_id, status="holdout")) == ["a-1"]
    assert ids(browse(client, admin_token, project_id, status="flagged")) == ["a-2"]
    assert ids(browse(client, admin_token, project_id, min_confidence="0.8")) == ["a-1"]
    assert ids(browse(client, admin_token, project_id, min_confidence="0.5", max_confidence="0.6")) == ["a-2"]
    body = browse(client, admin_token, project_id, q="a-2").json
    assert body["total"] == 1 and body["total_exact"] is True
    (found,) = body["examples"]
    assert found["prediction"] == {"label": "pos", "confidence": 0.55, "model_version": 1}
    assert [(l["value"], l["annotator"], l["source"]) for l in found["labels"]] == [("neg", None, "import")]
    assert found["open_flags"] == 1
    assert "prediction" not in browse(client, admin_token, project_id, q="b-5").json["examples"][0]


TEXTS = ["Été à Paris", "un ÉTÉ chaud", "ete sans accent", "Ünïcödé ÜBER", "über alles", "Дом и ДОМ", "100% sûr",
         "snake_case", "MiXeD CaSe", "plain words"]
QUERIES = ["ÉTÉ", "été", "Été", "ete", "é", "É", "üb", "ÜBER", "Ü", "дом", "ДО", "%", "_", "0%", "e_c", "mixed case",
           "ID-1", "x", "a", "Paris", "ÉTÉ CHAUD", "AIN WO", "ds", "nope", "sûr", "SÛR"]


def test_a_search_finds_exactly_the_examples_holding_the_text_in_any_case(app, client, admin_token, make_project):
    """Every text, of one character or more, ASCII or not, finds exactly the examples whose text or
    external id holds it, case ignored (as Python's ``str.lower`` ignores it): through the text
    index (3 characters or more) and through the scan (shorter, or on SQLite without the index,
    whose scan lowercases with Python: SQLite's ``lower()`` folds ASCII only)."""
    import labeling.db

    rows = [{"external_id": f"id-{i}-{t.split()[0]}", "text": t} for i, t in enumerate(TEXTS)]
    project_id = make_project(examples=rows)
    engine = app.extensions["hitl_engine"]
    for indexed in (True, False) if engine.dialect.name == "sqlite" else (True,):
        labeling.db._TEXT_INDEX[engine] = indexed
        for q in QUERIES:
            expected = [r["external_id"] for r in rows
                        if q.lower() in r["text"].lower() or q.lower() in r["external_id"].lower()]
            body = browse(client, admin_token, project_id, q=q, limit=100).json
            assert [e["external_id"] for e in body["examples"]] == expected, (q, indexed)
            assert body["total"] == len(expected) and body["total_exact"] and body["search_complete"], (q, body)
    assert ids(browse(client, admin_token, project_id, q="ÉTÉ")) == ["id-0-Été", "id-1-un"]  # "été" in any case
    labeling.db._TEXT_INDEX.pop(engine)


def test_postgresql_hands_its_trigram_index_the_rarest_word(app, client, admin_token, make_project):
    """A trigram common to most examples costs the GIN index its whole posting list: of a text of
    several words the index gets the word fewest of the first examples hold (at most 1% of them),
    and the whole text is tested on what it returns; a text whose words are all common goes whole."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.orm import Session

    from labeling import browse as browsing

    engine = app.extensions["hitl_engine"]
    if engine.dialect.name != "postgresql":
        return
    project_id = make_project(examples=[{"external_id": f"x{i}", "text": f"example number {i} about"} for i in range(300)])
    with Session(engine) as s:
        project = s.get(Project, project_id)
        for q, index_part in (("number 123 about", "%123%"), ("NUMBER 12 about", "%NUMBER 12 about%"),
                              ("about ex", "%about ex%")):
            where = browsing._text_matches(s, project, q).compile(dialect=postgresql.dialect(),
                                                                  compile_kwargs={"literal_binds": True})
            sql = str(where).replace("%%", "%")  # the driver's paramstyle doubles them
            assert f"(examples.data ->> 'text') ILIKE '{index_part}'" in sql, (q, sql)
    assert ids(browse(client, admin_token, project_id, q="number 123 about")) == ["x123"]
    assert ids(browse(client, admin_token, project_id, q="NUMBER 12 ABOUT")) == ["x12"]
    assert ids(browse(client, admin_token, project_id, q="x29 nope")) == []


def test_a_text_of_one_or_two_characters_searches_the_first_examples_only(client, admin_token, make_project,
                                                                           monkeypatch):
    """No trigram index serves a text of 1-2 characters: it searches the project's first
    SHORT_TEXT_EXAMPLES examples in id order and says so (the total is not exact); 3 characters
    or more search them all; a project no bigger than that is searched whole."""
    from labeling import browse as browsing

    monkeypatch.setattr(browsing, "SHORT_TEXT_EXAMPLES", 4)
    texts = ["cat one", "dog", "cat two", "dog", "dog", "cat six"]
    project_id = make_project(examples=[{"external_id": f"e{i}", "text": t} for i, t in enumerate(texts)])
    short = browse(client, admin_token, project_id, q="CA").json
    assert [e["external_id"] for e in short["examples"]] == ["e0", "e2"]
    assert (short["total"], short["total_exact"], short["search_complete"], short["searched_examples"]) == \
        (2, False, False, 4)
    assert ids(browse(client, admin_token, project_id, q="CA", offset=1, limit=1)) == ["e2"]
    assert ids(browse(client, admin_token, project_id, q="CA", label="pos")) == []
    full = browse(client, admin_token, project_id, q="CAT").json
    assert [e["external_id"] for e in full["examples"]] == ["e0", "e2", "e5"]
    assert (full["total"], full["total_exact"], full["search_complete"], full["searched_examples"]) == (3, True, True, None)
    small = make_project(examples=[{"external_id": f"s{i}", "text": t} for i, t in enumerate(texts[:4])])
    whole = browse(client, admin_token, small, q="ca").json  # exactly 4 examples: all searched
    assert [e["external_id"] for e in whole["examples"]] == ["s0", "s2"]
    assert (whole["total_exact"], whole["search_complete"], whole["searched_examples"]) == (True, True, None)


def test_the_text_index_follows_imports_duplicate_updates_and_a_project_delete(app, client, admin_token,
                                                                               make_project, session):
    """The text search reads an index on both databases (SQLite FTS5, PostgreSQL trigrams): an
    import adds to it, an import updating a duplicate replaces the old text, and deleting the
    project takes its examples out of it."""
    from sqlalchemy import text

    project_id = make_project(examples=ROWS)
    other_id = make_project(examples=[{"external_id": "o-1", "text": "The Cat sat"}])
    assert ids(browse(client, admin_token, project_id, q="the cat")) == ["a-1"]  # not the other project's
    updated = client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), json={
        "examples": [{"external_id": "a-1", "text": "a zebra stood"}, {"external_id": "n-6", "text": "new Zebras"}],
        "on_duplicate": "update"})
    assert updated.status_code == 201 and updated.json["updated"] == 1, updated.json
    assert ids(browse(client, admin_token, project_id, q="zebra")) == ["a-1", "n-6"]
    assert ids(browse(client, admin_token, project_id, q="the cat")) == []
    assert ids(browse(client, admin_token, project_id, q="N-6")) == ["n-6"]  # the external id too
    gone = [example_id(session, project_id, e) for e in ("a-1", "n-6")]
    assert client.delete(f"/api/v1/projects/{project_id}", headers=auth(admin_token),
                         query_string={"confirm": session.get(Project, project_id).name}).status_code == 204
    assert ids(browse(client, admin_token, other_id, q="the cat")) == ["o-1"]
    session.rollback()
    if session.get_bind().dialect.name == "sqlite":
        left = session.execute(text("SELECT rowid FROM examples_fts WHERE examples_fts MATCH '\"zebra\"'")).scalars()
        assert set(left).isdisjoint(gone)
        assert session.execute(text("SELECT rowid FROM examples_fts WHERE examples_fts MATCH '\"the cat\"'")
                               ).scalars().all() == [example_id(session, other_id, "o-1")]


def test_bad_filters_are_422_naming_each_field(client, admin_token, make_project):
    project_id = make_project(n=2)
    response = browse(client, admin_token, project_id, label="maybe", status="done", min_confidence="2", limit="0")
    assert response.status_code == 422
    response = browse(client, admin_token, project_id, label="maybe", status="done", min_confidence="x")
    assert response.status_code == 422
    assert {e["field"] for e in response.json["errors"]} == {"label", "status", "min_confidence"}


def test_pages_and_the_capped_total(client, admin_token, make_project, monkeypatch):
    from labeling import browse as browsing

    project_id = make_project(n=25)
    first = browse(client, admin_token, project_id, limit=10).json
    second = browse(client, admin_token, project_id, limit=10, offset=10).json
    last = browse(client, admin_token, project_id, limit=10, offset=20).json
    assert first["total"] == 25 and len(first["examples"]) == 10 and len(last["examples"]) == 5
    seen = [e["id"] for page in (first, second, last) for e in page["examples"]]
    assert seen == sorted(seen) and len(set(seen)) == 25
    monkeypatch.setattr(browsing, "TOTAL_CAP", 7)
    capped = browse(client, admin_token, project_id, q="example", limit=3).json
    assert capped["total"] == 7 and capped["total_exact"] is False
    exact = browse(client, admin_token, project_id, q="number 2", limit=3).json  # 2, 20-24
    assert exact["total"] == 6 and exact["total_exact"] is True


def test_relabel_adds_a_review_event_keeps_the_old_one_and_closes_its_flags(app, client, admin_token, make_user,
                                                                            make_project, session):
    project_id = make_project(examples=ROWS[:1])
    _, rev = make_user("rita", "reviewer")
    a1 = example_id(session, project_id, "a-1")
    imported = session.scalar(select(Label.id).where(Label.example_id == a1))
    s = app.extensions["hitl_sessionmaker"]()
    s.add(LabelFlag(project_id=project_id, label_id=imported, example_id=a1, given="pos", suggested="neg", score=0.9,
                    reason="model_disagrees", status="open", created_at=utcnow()))
    s.commit()
    s.close()

    same = client.post(f"/api/v1/examples/{a1}/relabel", headers=auth(rev), json={"label": "pos"})
    assert same.status_code == 422 and same.json["errors"][0]["field"] == "label"
    bad = client.post(f"/api/v1/examples/{a1}/relabel", headers=auth(rev), json={"label": "maybe"})
    assert bad.status_code == 422 and bad.json["errors"][0]["field"] == "label"
    response = client.post(f"/api/v1/examples/{a1}/relabel", headers=auth(rev), json={"label": "neg"})
    assert response.status_code == 201, response.json
    new = response.json["label"]
    assert new["value"] == "neg" and new["source"] == "review" and new["replaces"] == imported
    assert new["annotator"] == "rita"

    history = client.get(f"/api/v1/examples/{a1}", headers=auth(rev)).json
    assert [(e["value"], e["source"], e["current"]) for e in history["labels"]] == [
        ("pos", "import", False), ("neg", "review", True)]
    assert history["labels"][1]["replaces"] == history["labels"][0]["id"]
    assert [(f["status"], f["given"]) for f in history["flags"]] == [("superseded", "pos")]
    assert ids(browse(client, rev, project_id, label="neg")) == ["a-1"]
    assert ids(browse(client, rev, project_id, status="flagged")) == []
    session.rollback()
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "example.relabeled")).one()
    assert event.actor_name == "rita" and event.target == str(a1)
    assert event.details["from"] == "pos" and event.details["to"] == "neg"


def test_relabel_of_an_unlabeled_example_counts_and_of_several_needs_label_id(client, admin_token, make_user,
                                                                             make_project, session):
    project_id = make_project(examples=[{"external_id": "x", "text": "t"}], settings={"overlap": 2})
    x = example_id(session, project_id, "x")
    first = client.post(f"/api/v1/examples/{x}/relabel", headers=auth(admin_token), json={"label": "pos"})
    assert first.status_code == 201 and first.json["label"]["replaces"] is None
    session.rollback()
    assert session.get(Example, x).n_labels == 1
    _, ann = make_user("ann")
    assert client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(ann),
                       json={"example_id": x, "label": "neg"}).status_code == 201
    ambiguous = client.post(f"/api/v1/examples/{x}/relabel", headers=auth(admin_token), json={"label": "neg"})
    assert ambiguous.status_code == 422 and ambiguous.json["errors"][0]["field"] == "label_id"
    named = client.post(f"/api/v1/examples/{x}/relabel", headers=auth(admin_token),
                        json={"label": "neg", "label_id": first.json["label"]["id"]})
    assert named.status_code == 201 and named.json["label"]["replaces"] == first.json["label"]["id"]
    values = sorted(l["value"] for l in browse(client, admin_token, project_id).json["examples"][0]["labels"])
    assert values == ["neg", "neg"]


def test_roles_and_members_only_projects(client, admin_token, make_user, make_project, session):
    project_id = make_project(examples=ROWS[:2])
    _, ann = make_user("ann")
    _, rev = make_user("rita", "reviewer")
    _, other = make_user("otto", "reviewer")
    a1 = example_id(session, project_id, "a-1")
    assert browse(client, ann, project_id).status_code == 403
    assert client.get(f"/api/v1/examples/{a1}", headers=auth(ann)).status_code == 403
    assert client.post(f"/api/v1/examples/{a1}/relabel", headers=auth(ann), json={"label": "neg"}).status_code == 403
    assert client.put(f"/api/v1/projects/{project_id}/members", headers=auth(admin_token),
                      json={"members": [{"user": "rita", "role": "reviewer"}]}).status_code == 200
    assert browse(client, rev, project_id).status_code == 200
    assert browse(client, other, project_id).status_code == 404
    assert client.get(f"/api/v1/examples/{a1}", headers=auth(other)).status_code == 404
    refused = client.post(f"/api/v1/examples/{a1}/relabel", headers=auth(other), json={"label": "neg"})
    assert refused.status_code == 404
    session.rollback()
    assert session.scalar(select(Label.id).where(Label.source == "review")) is None


def test_no_filter_scans_or_sorts_the_examples(sqlite_template, tmp_path):
    """No plan reads the examples table whole or sorts it. The filters on ``examples`` walk
    ix_examples_project_id_id in id order and stop when the page is full (no sort); a text of
    three characters or more reads the FTS5 index in rowid order and each match by its id (no
    sort); an annotator and flagged read their own table by its index (the annotator's labels, the
    project's open flags) and look each example up by (project_id, id): only those matches are
    sorted."""
    import shutil

    from sqlalchemy import text
    from sqlalchemy.orm import Session

    from labeling import browse as browsing
    from labeling.db import make_engine
    from labeling.models import Project

    path = tmp_path / "plan.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")  # with hitl_lower, which the scan of a short text calls
    project = Project(id=1, name="p", labels=[{"name": "pos"}, {"name": "neg"}], settings={}, n_examples=0)
    walks = "SEARCH examples USING {}INDEX ix_examples_project_id_id (project_id=?)"
    by_id = "SEARCH examples USING COVERING INDEX ix_examples_project_id_id (project_id=? AND id=?"
    expected = [
        ({}, [walks.format("COVERING ")]), ({"q": "x"}, [walks.format("")]),
        ({"label": "pos"}, [walks.format(""), "SEARCH labels USING INDEX ix_labels_example_annotator"]),
        ({"status": "labeled"}, [walks.format("")]), ({"status": "unlabeled"}, [walks.format("")]),
        ({"status": "holdout"}, [walks.format("")]), ({"min_confidence": "0.5"}, [walks.format("")]),
        ({"q": "cat"}, ["SCAN examples_fts VIRTUAL TABLE INDEX", "SEARCH examples USING INTEGER PRIMARY KEY"]),
        ({"annotator": "ann"}, [by_id, "SEARCH labels USING INDEX sqlite_autoindex_labels_1 (annotator_id=?)"]),
        ({"status": "flagged"}, [by_id, "SEARCH label_flags USING INDEX ix_flags_project_status_score "
                                        "(project_id=? AND status=?)"]),
        ({"q": "cat", "annotator": "ann", "status": "flagged"},
         ["SCAN examples_fts VIRTUAL TABLE INDEX", "SEARCH examples USING INTEGER PRIMARY KEY",
          "SEARCH labels USING INDEX sqlite_autoindex_labels_1", "SEARCH label_flags USING INDEX"]),
    ]
    with Session(engine) as s:
        for args, parts in expected:
            statement = browsing._statement(s, project, browsing.parse_filters(project, args))
            for query in (statement.limit(50), browsing._count_statement(statement)):  # the page, the count
                sql = query.compile(engine, compile_kwargs={"literal_binds": True})
                steps = [row[-1] for row in s.execute(text(f"EXPLAIN QUERY PLAN {sql}"))]
                plan = " | ".join(steps)
                assert all(part in plan for part in parts), (args, plan)
                scans = [step for step in steps if step.startswith("SCAN") and not step.startswith("SCAN anon_")]
                assert scans == (["SCAN examples_fts VIRTUAL TABLE INDEX 64:M2"] if "q" in args and len(args["q"]) >= 3
                                 else []), (args, plan)  # 64: in rowid order
                sorted_ = "USE TEMP B-TREE FOR ORDER BY" in plan
                assert sorted_ == (by_id in plan and "examples_fts" not in plan), (args, plan)
                assert plan.count("SEARCH examples") == 1, (args, plan)
    engine.dispose()


def test_examples_whose_annotators_disagree_are_found_before_any_retrain(client, admin_token, make_user, make_project,
                                                                          session):
    project_id = make_project(examples=[{"external_id": f"e{i}", "text": f"text {i}"} for i in range(3)],
                              settings={"overlap": 2, "holdout_fraction": 0})
    tokens = [make_user(name)[1] for name in ("ann", "bob")]
    given = {}
    for token, values in zip(tokens, ({"e0": "pos", "e1": "pos", "e2": "neg"}, {"e0": "neg", "e1": "pos", "e2": "neg"})):
        for _ in values:  # whatever order the queue serves them in
            lease = client.get(f"/api/v1/projects/{project_id}/next", headers=auth(token)).json
            example = lease["example"]["external_id"]
            value = values[example]
            answer = client.post(f"/api/v1/projects/{project_id}/labels", headers=auth(token),
                                 json={"example_id": lease["example"]["id"], "label": value})
            assert answer.status_code in (200, 201), answer.json
            given.setdefault(example, []).append(value)
    disagreed = {e for e, values in given.items() if len(set(values)) > 1}
    assert disagreed == {"e0"}
    assert ids(browse(client, admin_token, project_id, status="disagreed")) == ["e0"]
    session.rollback()
    label_id = session.scalar(select(Label.id).join(Example, Example.id == Label.example_id)
                              .where(Example.external_id == "e0", Label.value == "neg"))
    assert client.post(f"/api/v1/labels/{label_id}/undo", headers=auth(tokens[1])).status_code in (200, 201)
    assert ids(browse(client, admin_token, project_id, status="disagreed")) == []  # the undone label is not current
