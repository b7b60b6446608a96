"""Serving and labeling: leases, overlap, idempotency, undo, and no double labels under load."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from labeling import labels, projects, queue, users
from labeling.db import make_engine, make_sessionmaker, utcnow
from labeling.errors import Conflict, Forbidden, InvalidInput
from labeling.examples import import_examples, json_rows
from labeling.models import Example, Label, Project


@pytest.fixture
def db(db_url):
    engine = make_engine(db_url)
    maker = make_sessionmaker(engine)
    yield maker
    engine.dispose()


def setup_project(maker, n=10, settings=None, annotators=("a", "b"), name="P", random_state=0):
    now = utcnow()
    with maker() as s:
        project = projects.create_project(s, name, ["pos", "neg"], settings or {}, now=now)
        import_examples(s, project, json_rows([{"external_id": str(i), "text": f"t{i}"} for i in range(n)]),
                        now=now, random_state=random_state)
        people = [users.create_user(s, name, "annotator", password=None, now=now) for name in annotators]
        s.commit()
        return project.id, [p.id for p in people]


def lease(maker, project_id, user_id, now=None, seconds=300):
    with maker() as s:
        project = projects.get_project(s, project_id)
        got = queue.lease_next(s, project, users.get_user(s, user_id), now=now or utcnow(), lease_seconds=seconds)
        s.commit()
        return got


def submit(maker, project_id, user_id, example_id, value="pos", **kw):
    with maker() as s:
        project = projects.get_project(s, project_id)
        result = labels.submit_label(s, project, users.get_user(s, user_id), example_id, value, now=kw.pop("now", utcnow()), **kw)
        s.commit()
        return result


def test_serves_highest_priority_first_and_never_the_same_to_two(db):
    project_id, (a, b) = setup_project(db, settings={"holdout_fraction": 0})
    with db() as s:
        expected = s.scalar(select(Example.id).order_by(Example.priority.desc()).limit(1))
    first = lease(db, project_id, a)
    second = lease(db, project_id, b)
    assert first.example_id == expected
    assert second.example_id != first.example_id
    assert lease(db, project_id, a).example_id == first.example_id  # a reload serves the same lease


def test_a_queue_seed_replays_the_random_picks_for_the_same_labels(db):
    def picks(name, annotators):
        project_id, people = setup_project(db, n=30, settings={"holdout_fraction": 0.5, "queue_seed": 7},
                                           annotators=annotators, name=name, random_state=None)
        a = people[0] if people else user
        served = []
        for _ in range(12):
            got = lease(db, project_id, a)
            served.append((got.external_id, got.strategy))
            submit(db, project_id, a, got.example_id)
        return served, a

    first, user = picks("P1", ("a",))
    assert picks("P2", ())[0] == first  # the same person labeling a copy of the same import
    assert {strategy for _, strategy in first} == {"holdout", "cold_start"}  # both kinds of pick were drawn


def test_expired_lease_returns_to_the_queue_and_old_holder_gets_409(db):
    project_id, (a, b) = setup_project(db, n=1)
    now = utcnow()
    mine = lease(db, project_id, a, now=now, seconds=60)
    assert lease(db, project_id, b, now=now) is None
    later = now + timedelta(seconds=61)
    theirs = lease(db, project_id, b, now=later)
    assert theirs.example_id == mine.example_id
    with pytest.raises(Conflict, match="someone else"):
        submit(db, project_id, a, mine.example_id, lease_id=mine.lease_id, now=later)
    assert submit(db, project_id, b, theirs.example_id, lease_id=theirs.lease_id, now=later).created


def test_idempotency_key_makes_one_label(db):
    project_id, (a, _) = setup_project(db)
    got = lease(db, project_id, a)
    first = submit(db, project_id, a, got.example_id, idempotency_key="k1", lease_id=got.lease_id)
    again = submit(db, project_id, a, got.example_id, idempotency_key="k1", lease_id=got.lease_id)
    assert first.created and not again.created and again.label.id == first.label.id
    with db() as s:
        assert s.scalar(select(func.count()).select_from(Label)) == 1


def test_overlap_serves_an_example_to_k_different_people_once_each(db):
    project_id, people = setup_project(db, n=1, settings={"overlap": 2}, annotators=("a", "b", "c"))
    a, b, c = people
    got = lease(db, project_id, a)
    submit(db, project_id, a, got.example_id)
    assert lease(db, project_id, a) is None  # never twice to one person
    got_b = lease(db, project_id, b)
    assert got_b.example_id == got.example_id
    submit(db, project_id, b, got_b.example_id)
    assert lease(db, project_id, c) is None  # two labels: done
    with pytest.raises(Conflict, match="all the labels"):
        submit(db, project_id, c, got.example_id)


def test_undo_is_a_new_event_and_requeues(db):
    project_id, (a, b) = setup_project(db, n=1)
    got = lease(db, project_id, a)
    result = submit(db, project_id, a, got.example_id)
    assert lease(db, project_id, a) is None
    with db() as s:
        with pytest.raises(Forbidden):
            labels.undo_label(s, users.get_user(s, b), result.label.id, now=utcnow())
        undo = labels.undo_label(s, users.get_user(s, a), result.label.id, now=utcnow())
        s.commit()
        assert undo.replaces_id == result.label.id and undo.value is None
        assert s.scalar(select(func.count()).select_from(Label)) == 2
        with pytest.raises(Conflict, match="already undone"):
            labels.undo_label(s, users.get_user(s, a), result.label.id, now=utcnow())
    assert lease(db, project_id, a).example_id == got.example_id


def test_labels_today_leave_out_what_the_annotator_undid_or_changed(db):
    project_id, (a, _) = setup_project(db, n=3)
    given = []
    for _ in range(3):
        got = lease(db, project_id, a)
        given.append(submit(db, project_id, a, got.example_id, "pos").label)
    with db() as s:
        user, project = users.get_user(s, a), s.get(Project, project_id)
        assert labels.labels_today(s, project, user, now=utcnow()) == 3
        labels.undo_label(s, user, given[0].id, now=utcnow())
        s.commit()
        assert labels.labels_today(s, project, user, now=utcnow()) == 2
    submit(db, project_id, a, given[1].example_id, "neg")  # changed its mind: still one label of that example
    with db() as s:
        assert labels.labels_today(s, s.get(Project, project_id), users.get_user(s, a), now=utcnow()) == 2
        assert labels.labels_today(s, s.get(Project, project_id), users.get_user(s, a),
                                   now=utcnow() + timedelta(days=1)) == 0


def test_a_second_label_by_the_same_person_is_a_correction(db):
    project_id, (a, _) = setup_project(db, n=1, settings={"overlap": 2})
    got = lease(db, project_id, a)
    first = submit(db, project_id, a, got.example_id, "pos")
    second = submit(db, project_id, a, got.example_id, "neg")
    assert second.label.replaces_id == first.label.id
    with db() as s:
        assert s.scalar(select(Example.n_labels)) == 1


def test_bad_input_names_the_field(db):
    project_id, (a, _) = setup_project(db, n=1)
    got = lease(db, project_id, a)
    with pytest.raises(InvalidInput) as err:
        submit(db, project_id, a, got.example_id, "maybe")
    assert err.value.problems[0].field == "label"
    with pytest.raises(InvalidInput) as err:
        submit(db, project_id, a, "seven")
    assert err.value.problems[0].field == "example_id"


def test_skip_is_not_served_again_to_the_same_person(db):
    project_id, (a, b) = setup_project(db, n=2, settings={"holdout_fraction": 0})
    got = lease(db, project_id, a)
    with db() as s:
        queue.skip_example(s, projects.get_project(s, project_id), users.get_user(s, a), got.example_id, now=utcnow())
        s.commit()
    other = lease(db, project_id, a)
    assert other.example_id != got.example_id
    submit(db, project_id, a, other.example_id)
    assert lease(db, project_id, a) is None
    assert lease(db, project_id, b).example_id == got.example_id


def test_eight_annotators_hammering_label_every_example_exactly_once(db):
    n = 2000
    names = tuple(f"w{i}" for i in range(8))
    project_id, people = setup_project(db, n=n, annotators=names)

    def work(user_id):
        done = 0
        while True:
            for attempt in range(20):
                try:
                    got = lease(db, project_id, user_id)
                    break
                except Exception:  # a lock timeout under contention: try again
                    if attempt == 19:
                        raise
            if got is None:
                return done
            submit(db, project_id, user_id, got.example_id, "pos", lease_id=got.lease_id,
                   idempotency_key=f"{user_id}-{got.example_id}")
            done += 1

    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(work, people))
    assert sum(counts) == n
    with db() as s:
        per_example = s.execute(select(Label.example_id, func.count()).group_by(Label.example_id)).all()
        assert len(per_example) == n
        assert max(c for _, c in per_example) == 1
        assert s.scalar(select(func.count()).where(Example.needs_labels)) == 0
