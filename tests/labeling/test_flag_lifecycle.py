"""A flag's life: one per label, never re-raised without new labels, closed when its label goes."""

import numpy as np
from sqlalchemy import select

from labeling.models import Label, LabelFlag
from tests.conftest import auth
from tests.labeling.test_quality import LABELS, noisy_digits


def open_flags(client, token, project_id):
    return client.get(f"/api/v1/projects/{project_id}/flags?limit=1000", headers=auth(token)).json["flags"]


def retrain(client, token, project_id):
    run_id = client.post(f"/api/v1/projects/{project_id}/retrain", headers=auth(token)).json["run_id"]
    return client.get(f"/api/v1/runs/{run_id}", headers=auth(token)).json


def test_a_retrain_with_no_new_labels_raises_no_flag_and_a_judged_label_is_never_flagged_again(
        client, admin_token, make_project):
    rows, _ = noisy_digits(700, 0.1, seed=2)
    project_id = make_project(labels=LABELS, examples=rows)
    flags = open_flags(client, admin_token, project_id)
    assert flags
    run = retrain(client, admin_token, project_id)
    assert run["status"] == "succeeded" and run["result"]["new_flags"] == 0
    assert "no label changed" in run["result"]["quality_check_skipped"]
    assert len(open_flags(client, admin_token, project_id)) == len(flags)
    for flag in flags:
        client.post(f"/api/v1/flags/{flag['id']}", headers=auth(admin_token), json={"action": "dismiss"})
    # New labels arrive (so the check runs again), and the dismissed labels stay judged.
    extra, _ = noisy_digits(760, 0.0, seed=2)
    client.post(f"/api/v1/projects/{project_id}/examples", headers=auth(admin_token), json={"examples": extra[700:]})
    retrain(client, admin_token, project_id)
    every = client.get(f"/api/v1/projects/{project_id}/flags?status=all&limit=1000", headers=auth(admin_token)).json["flags"]
    label_ids = [f["label_id"] for f in every]
    assert len(label_ids) == len(set(label_ids))  # one flag per label, ever


def test_a_flag_whose_label_is_undone_or_replaced_closes_itself(client, admin_token, make_project, session):
    rows, _ = noisy_digits(700, 0.1, seed=3)
    project_id = make_project(labels=LABELS, examples=rows)
    first, second, third = open_flags(client, admin_token, project_id)[:3]
    # Undone through the API: its flag closes at once, with the reason.
    assert client.post(f"/api/v1/labels/{first['label_id']}/undo", headers=auth(admin_token)).status_code == 200
    closed = {f["id"]: f for f in client.get(f"/api/v1/projects/{project_id}/flags?status=superseded",
                                             headers=auth(admin_token)).json["flags"]}
    assert first["id"] in closed and "undone or replaced" in closed[first["id"]]["closed_because"]
    # Replaced by a path that does not close flags itself: the reviewer's attempt closes it ...
    flagged = session.get(Label, second["label_id"])
    session.add(Label(project_id=project_id, example_id=flagged.example_id, value=second["suggested"],
                      replaces_id=flagged.id, source="test-replace", created_at=flagged.created_at))
    flagged = session.get(Label, third["label_id"])
    session.add(Label(project_id=project_id, example_id=flagged.example_id, value=third["suggested"],
                      replaces_id=flagged.id, source="test-replace", created_at=flagged.created_at))
    session.commit()
    answer = client.post(f"/api/v1/flags/{second['id']}", headers=auth(admin_token), json={"action": "confirm"})
    assert answer.status_code == 409 and "closed" in answer.json["error"]
    # ... and the next retrain's sweep closes any other.
    retrain(client, admin_token, project_id)
    session.expire_all()
    statuses = dict(session.execute(select(LabelFlag.id, LabelFlag.status).where(
        LabelFlag.id.in_([first["id"], second["id"], third["id"]]))).all())
    assert statuses == {first["id"]: "superseded", second["id"]: "superseded", third["id"]: "superseded"}
    assert {f["id"] for f in open_flags(client, admin_token, project_id)}.isdisjoint(statuses)


def test_the_label_check_says_what_it_concluded(client, admin_token, make_project, session):
    from labeling.quality import label_check_summary

    def summary(project_id):
        session.rollback()  # a fresh read: the runs committed in other sessions
        return label_check_summary(session, project_id)

    rows, _ = noisy_digits(700, 0.1, seed=4)
    noisy = summary(make_project(labels=LABELS, examples=rows))
    assert "estimates that" in noisy and "% of labels are wrong" in noisy
    assert "at the first check: any label given here, not imported" in noisy  # why a found label may wait
    clean, _ = noisy_digits(700, 0.0, seed=4)
    clean_project = make_project(labels=LABELS, examples=clean)
    said = summary(clean_project)
    assert "no sign of wrong labels" in said and "open flag" not in said
    from labeling.db import utcnow
    from labeling.models import Label
    from labeling.quality import flag_kept_warning

    label = session.scalars(select(Label).where(Label.project_id == clean_project).limit(1)).one()
    label.warned_suggestion, label.warned_confidence = "0", 0.97
    flag_kept_warning(session, label, now=utcnow())
    session.commit()
    assert "The 1 open flag came from earlier checks" in summary(clean_project)  # not "no sign" alone beside it
    few = summary(make_project(labels=LABELS, examples=clean[:60]))
    assert "did not judge labels" in few and "too few" in few
    assert "no check has run yet" in summary(make_project(n=0))


def record_a_check(session, project, example_ids, current, gold, posteriors, *, bar):
    """A label check with these posteriors (flagging those at ``bar`` or more), recorded and
    committed; returns how many flags it opened."""
    from active_learning.label_errors import LabelIssues
    from labeling.db import utcnow
    from labeling.quality import record_flags

    posteriors = np.asarray(posteriors, dtype=float)
    flagged = np.where(posteriors >= bar)[0]
    suggested = [LABELS[(LABELS.index(gold[i]) + 1) % 10] for i in flagged]
    issues = LabelIssues(flagged, posteriors[flagged], suggested, posteriors=posteriors)
    opened = record_flags(session, project, example_ids, current, gold, issues, run_id=None, now=utcnow(),
                          judged_through=max(label_id for row in current for label_id, _ in row))
    session.commit()
    return opened


def test_a_model_flag_is_withdrawn_when_a_later_check_finds_the_label_likely_right_and_reopens_when_doubt_returns(
        make_project, session):
    from active_learning.label_errors import WITHDRAW_BELOW, LabelIssues
    from labeling.models import Project
    from labeling.quality import record_flags
    from labeling.db import utcnow

    project_id = make_project(labels=LABELS, examples=noisy_digits(30, 0.0)[0])  # too few labels for a check to flag
    project = session.get(Project, project_id)
    labels = session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.id)).all()
    example_ids, gold = [x.example_id for x in labels], [x.value for x in labels]
    current = [[(x.id, x.value)] for x in labels]

    def check(posteriors):
        opened = record_a_check(session, project, example_ids, current, gold, posteriors, bar=0.9)
        return opened, {f.label_id: f.status for f in session.scalars(select(LabelFlag).where(LabelFlag.project_id == project_id))}

    doubts = np.zeros(len(labels))
    doubts[[0, 1, 2]] = 0.97
    opened, flags = check(doubts)
    assert opened == 3 and set(flags.values()) == {"open"}
    # The next check: label 0 is still doubted, label 1 a little (kept open), label 2 likely right.
    doubts[[1, 2]] = [WITHDRAW_BELOW + 0.1, WITHDRAW_BELOW - 0.1]
    opened, flags = check(doubts)
    assert opened == 0
    assert [flags[labels[i].id] for i in range(3)] == ["open", "open", "withdrawn"]
    # Doubt returns on label 2: the check before found it likely right, so a second check must
    # agree; then the same flag reopens (one flag per label, ever).
    doubts[2] = 0.99
    opened, flags = check(doubts)
    assert opened == 0 and flags[labels[2].id] == "withdrawn"
    opened, flags = check(doubts)
    assert opened == 1 and flags[labels[2].id] == "open" and len(flags) == 3
    # A check that judged nothing (no posteriors: no label changed, too few labels) withdraws nothing ...
    nothing = LabelIssues(np.empty(0, dtype=int), np.empty(0), [])
    record_flags(session, project, example_ids, current, gold, nothing, run_id=None, now=utcnow(),
                 judged_through=labels[-1].id)
    session.commit()
    assert session.scalar(select(LabelFlag.status).where(LabelFlag.label_id == labels[2].id)) == "open"
    # ... but one that found the model too weak to judge withdraws every open model flag: no check
    # stands behind them any more. Doubt returning reopens them.
    weak = LabelIssues(np.empty(0, dtype=int), np.empty(0), [], skipped="too weak", model_too_weak=True)
    opened = record_flags(session, project, example_ids, current, gold, weak, run_id=None, now=utcnow(),
                          judged_through=labels[-1].id)
    session.commit()
    statuses = {f.label_id: f.status for f in session.scalars(select(LabelFlag).where(LabelFlag.project_id == project_id))}
    assert opened == 0 and set(statuses.values()) == {"withdrawn"} and len(statuses) == 3
    opened, flags = check(doubts)
    assert opened == 2 and [flags[labels[i].id] for i in range(3)] == ["open", "withdrawn", "open"]


def test_a_check_too_weak_to_judge_leaves_the_flag_of_a_label_that_became_a_minority_open(make_project, session):
    from active_learning.label_errors import LabelIssues
    from labeling.db import utcnow
    from labeling.models import Project
    from labeling.quality import record_flags

    project_id = make_project(labels=LABELS, examples=noisy_digits(30, 0.0)[0])
    project = session.get(Project, project_id)
    labels = session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.id)).all()
    example_ids, gold = [x.example_id for x in labels], [x.value for x in labels]
    current = [[(x.id, x.value)] for x in labels]
    doubts = np.zeros(len(labels))
    doubts[0] = 0.97
    suggested = LABELS[(LABELS.index(gold[0]) + 1) % 10]
    record_flags(session, project, example_ids, current, gold,
                 LabelIssues(np.array([0]), doubts[[0]], [suggested], posteriors=doubts), run_id=None, now=utcnow(),
                 judged_through=labels[-1].id)
    session.commit()
    # A second annotator gives the suggested class and the consensus takes it: label 0 is now a
    # minority label, which annotators disagreeing is reason enough to keep flagged.
    other = Label(project_id=project_id, example_id=labels[0].example_id, value=suggested, created_at=utcnow(),
                  source="test")
    session.add(other)
    session.commit()
    current[0], gold[0] = [(labels[0].id, labels[0].value), (other.id, suggested)], suggested
    weak = LabelIssues(np.empty(0, dtype=int), np.empty(0), [], skipped="too weak", model_too_weak=True)
    record_flags(session, project, example_ids, current, gold, weak, run_id=None, now=utcnow(),
                 judged_through=labels[-1].id)
    session.commit()
    session.expire_all()
    assert session.scalars(select(LabelFlag.status).where(LabelFlag.label_id == labels[0].id)).one() == "open"


def test_a_label_a_check_found_likely_right_is_flagged_only_when_the_next_check_doubts_it_too(make_project, session):
    from labeling.db import utcnow
    from labeling.models import LabelDoubt, Project

    project_id = make_project(labels=LABELS, examples=noisy_digits(30, 0.0)[0])  # too few labels for a check to flag
    project = session.get(Project, project_id)
    labels = session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.id)).all()
    example_ids, gold = [x.example_id for x in labels], [x.value for x in labels]
    current = [[(x.id, x.value)] for x in labels]

    def check(posteriors):
        opened = record_a_check(session, project, example_ids, current, gold, posteriors, bar=0.8)
        open_ids = set(session.scalars(select(LabelFlag.label_id).where(LabelFlag.project_id == project_id,
                                                                       LabelFlag.status == "open")))
        doubted = set(session.scalars(select(LabelDoubt.label_id).where(LabelDoubt.project_id == project_id)))
        return opened, open_ids, doubted

    # The project's first check: nothing judged these labels before, so its doubt is enough.
    posteriors = np.full(len(labels), 0.05)
    posteriors[0] = 0.9
    assert check(posteriors) == (1, {labels[0].id}, {labels[0].id})
    # Label 1, found likely right by that check, and label 2, replaced since (a new label): the
    # same doubt flags the new label at once and waits for a second opinion on label 1.
    replacement = Label(project_id=project_id, example_id=labels[2].example_id, value=gold[2], replaces_id=labels[2].id,
                        created_at=utcnow(), source="test")
    session.add(replacement)
    session.commit()
    current[2] = [(replacement.id, gold[2])]
    posteriors[[1, 2]] = 0.9
    opened, open_ids, doubted = check(posteriors)
    assert opened == 1 and open_ids == {labels[0].id, replacement.id}
    assert doubted == {labels[0].id, labels[1].id, replacement.id}
    # The next check doubts label 1 again: now it is flagged.
    opened, open_ids, _ = check(posteriors)
    assert opened == 1 and labels[1].id in open_ids
    # A check that found label 3 more likely wrong than right, under the flagging bar, is a doubt
    # the next check can stand on.
    posteriors[3] = 0.6
    assert check(posteriors)[0] == 0
    posteriors[3] = 0.85
    opened, open_ids, _ = check(posteriors)
    assert opened == 1 and labels[3].id in open_ids


def test_at_a_projects_first_check_a_label_given_in_the_loop_waits_for_the_next_checks_doubt(make_project, session):
    from labeling.models import Project

    project_id = make_project(labels=LABELS, examples=noisy_digits(30, 0.0)[0])
    project = session.get(Project, project_id)
    labels = session.scalars(select(Label).where(Label.project_id == project_id).order_by(Label.id)).all()
    for given in labels[1:]:  # labels[0] stays imported; the rest were given by annotators
        given.source = "annotator"
    session.commit()
    example_ids, gold = [x.example_id for x in labels], [x.value for x in labels]
    current = [[(x.id, x.value)] for x in labels]
    posteriors = np.full(len(labels), 0.05)
    posteriors[[0, 1, 2]] = 0.9

    def open_ids():
        return set(session.scalars(select(LabelFlag.label_id).where(LabelFlag.project_id == project_id,
                                                                   LabelFlag.status == "open")))

    # The first check flags the imported label at once; the annotators' labels it only doubts.
    assert record_a_check(session, project, example_ids, current, gold, posteriors, bar=0.8) == 1
    assert open_ids() == {labels[0].id}
    # The next check doubts label 1 again (flagged) and finds label 2 likely right (not flagged).
    posteriors[2] = 0.05
    assert record_a_check(session, project, example_ids, current, gold, posteriors, bar=0.8) == 1
    assert open_ids() == {labels[0].id, labels[1].id}
