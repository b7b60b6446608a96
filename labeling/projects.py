"""Projects: the label set and the settings that steer the queue, retraining and webhooks."""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Callable

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session

from active_learning import names
from active_learning.names import MULTILABEL_STRATEGIES, NEEDS_EMBEDDINGS, STRATEGIES
from labeling import audit
from labeling.access import visible_to
from labeling.errors import Conflict, InvalidInput, NotFound, Problem
from labeling.models import Example, Label, LabelFlag, ModelVersion, Project, User
from labeling.outbound import url_problem
from labeling import tasks
from labeling.tasks import TASKS
from labeling.validation import is_storable_text

FEATURIZERS = ("auto", *names.FEATURIZERS)
MULTILABEL_DEFAULT = MULTILABEL_STRATEGIES[0]
MULTILABEL_ONLY = tuple(s for s in MULTILABEL_STRATEGIES if s not in STRATEGIES)
DEFAULT_HOTKEYS = "1234567890qwertyuiopasdfghjklzxcvbnm"
MAX_LABELS = 200
PROMOTION_METRICS = ("accuracy", "macro_f1")
SUGGESTION_MODES = ("off", "show", "preselect")  # what the labeling page shows (labeling/suggestions.py)


@dataclass(frozen=True)
class ProjectSetting:
    default: Any
    check: Callable[[Any], str | None]  # returns the problem, or None
    help: str


def _choice(options: tuple[str, ...]) -> Callable[[Any], str | None]:
    return lambda v: None if v in options else f"must be one of {', '.join(options)}"


def _featurizer_choice(value: Any) -> str | None:
    problem = _choice(FEATURIZERS)(value)
    if problem is None and value in NEEDS_EMBEDDINGS:
        from active_learning import embeddings

        return None if embeddings.available() else embeddings.MISSING
    return problem


def _int_range(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi
        return None if ok else f"must be a whole number from {lo} to {hi}"

    return check


def _float_range(lo: float, hi: float) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and lo <= v <= hi
        return None if ok else f"must be a number from {lo} to {hi}"

    return check


def _webhook_url(v: Any) -> str | None:
    if v in ("", None):
        return None
    if not isinstance(v, str) or len(v) > 2000:
        return "must be an http(s) URL"
    return url_problem(v)


def _boolean(v: Any) -> str | None:
    return None if isinstance(v, bool) else "must be true or false"


def _optional_seed(v: Any) -> str | None:
    if v in ("", None) or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 2**63 - 1):
        return None
    return "must be a whole number from 0 to 2^63-1, or empty"


def _webhook_secret(v: Any) -> str | None:
    if v in ("", None):
        return None
    if not isinstance(v, str) or not v.startswith("whsec_"):
        return "must be whsec_ followed by base64 of 24 to 64 random bytes"
    try:
        raw = base64.b64decode(v[len("whsec_"):], validate=True)
    except (binascii.Error, ValueError):
        return "must be whsec_ followed by base64 of 24 to 64 random bytes"
    return None if 24 <= len(raw) <= 64 else "must be whsec_ followed by base64 of 24 to 64 random bytes"


PROJECT_SETTINGS: dict[str, ProjectSetting] = {
    "task": ProjectSetting("single_label", _choice(TASKS), "single_label: one label per example; multi_label: "
                           "a set of labels, possibly empty (fixed once the project has labels)"),
    "strategy": ProjectSetting("margin", _choice(STRATEGIES + MULTILABEL_ONLY), "how the queue picks the next example "
                               f"(multi-label projects: {', '.join(MULTILABEL_STRATEGIES)}; default {MULTILABEL_DEFAULT})"),
    "retrain_threshold": ProjectSetting(20, _int_range(1, 100000), "new labels that trigger a retrain"),
    "overlap": ProjectSetting(1, _int_range(1, 50), "labels wanted per example, from different people"),
    "featurizer": ProjectSetting("auto", _featurizer_choice, "how examples become model inputs"),
    "holdout_fraction": ProjectSetting(0.1, _float_range(0.0, 0.5), "share of labeled examples kept for evaluation"),
    "random_share": ProjectSetting(0.05, _float_range(0.0, 1.0), "share of picks made at random to keep the queue honest"),
    "diverse_batches": ProjectSetting(True, _boolean, "spread the picks between two retrains over the data "
                                      "(k-means on the 10x most informative) instead of one uncertain region"),
    "typical_picks": ProjectSetting(True, _boolean, "with diverse_batches in a single-label project: while the "
                                    "model predicts its labels little beyond chance (out-of-fold kappa below 0.4), "
                                    "weigh each pick's informativeness by how typical it is of the pool, so outliers "
                                    "wait"),
    "promotion_metric": ProjectSetting("macro_f1", _choice(PROMOTION_METRICS),
                                       "holdout metric on which a candidate must not be significantly worse"),
    "queue_seed": ProjectSetting("", _optional_seed, "replays imports' random keys and the queue's random "
                                 "picks for the same labels (simulations); empty: fresh randomness"),
    "suggestions": ProjectSetting("off", _choice(SUGGESTION_MODES),
                                  "the model's suggestion on the labeling page: off, show (its top labels with "
                                  "probabilities) or preselect (its label pre-selected; Enter accepts it)"),
    "blind_share": ProjectSetting(0.1, _float_range(0.0, 1.0), "share of examples served without a suggestion, "
                                  "so the dashboard can compare suggested and blind labels"),
    "webhook_url": ProjectSetting("", _webhook_url, "where signed webhooks are sent"),
    "webhook_secret": ProjectSetting("", _webhook_secret, "Standard Webhooks secret (whsec_...)"),
}


@dataclass(frozen=True)
class ProjectConfig:
    """A project's settings as typed values, defaults from ``PROJECT_SETTINGS`` (the one place
    they are written). Read settings through :func:`config`, never from ``Project.settings``."""

    task: str
    strategy: str
    retrain_threshold: int
    overlap: int
    featurizer: str
    holdout_fraction: float
    random_share: float
    diverse_batches: bool
    typical_picks: bool
    promotion_metric: str
    queue_seed: int | None  # None: fresh randomness
    suggestions: str
    blind_share: float
    webhook_url: str
    webhook_secret: str


def config(project: Project) -> ProjectConfig:
    """The project's settings, each stored value or else its registry default."""
    values = {key: spec.default for key, spec in PROJECT_SETTINGS.items()}
    values.update(project.settings or {})
    values["queue_seed"] = None if values["queue_seed"] in ("", None) else int(values["queue_seed"])
    return ProjectConfig(**{f.name: values[f.name] for f in fields(ProjectConfig)})


def queue_seed(project: Project) -> int | None:
    """The project's ``queue_seed``: numpy seeds made of it (and of what tells one draw from the
    next) make imports and the queue's random picks replay exactly. None: fresh randomness."""
    return config(project).queue_seed


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def validate_settings(given: Any, *, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return full settings: ``current`` (or the defaults) updated with ``given``.

    Raises
    ------
    InvalidInput
        Naming every unknown key (with the valid ones) and every bad value.
    """
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise InvalidInput.one("settings must be an object", field="settings")
    problems = []
    for key, value in given.items():
        spec = PROJECT_SETTINGS.get(key)
        if spec is None:
            problems.append(Problem(
                f"unknown setting; valid ones are {', '.join(PROJECT_SETTINGS)}", field=f"settings.{key}"
            ))
            continue
        problem = None if key == "strategy" else spec.check(value)  # checked against the task's own below
        if problem:
            problems.append(Problem(problem, field=f"settings.{key}"))
    if problems:
        raise InvalidInput("invalid project settings", problems)
    settings = {k: s.default for k, s in PROJECT_SETTINGS.items()}
    settings.update(current or {})
    settings.update({k: ("" if v is None else v) for k, v in given.items()})
    _strategy_for_task(settings, given)
    if settings["webhook_url"] and not settings["webhook_secret"]:
        settings["webhook_secret"] = new_webhook_secret()
    return settings


def _strategy_for_task(settings: dict[str, Any], given: dict[str, Any]) -> None:
    """A strategy of the project's task: one given for the other task is a 422; one kept from
    before or from the defaults becomes the task's default."""
    allowed = MULTILABEL_STRATEGIES if settings["task"] == "multi_label" else STRATEGIES
    if settings["strategy"] in allowed:
        return
    if "strategy" in given:
        raise InvalidInput.one(f"a {settings['task']} project's strategy is one of {', '.join(allowed)}",
                               field="settings.strategy")
    settings["strategy"] = MULTILABEL_DEFAULT if settings["task"] == "multi_label" else PROJECT_SETTINGS["strategy"].default


def validate_label_set(labels: Any) -> list[dict[str, str | None]]:
    """Accept ``["pos", "neg"]`` or ``[{"name": "pos", "hotkey": "p"}, ...]``; fill in hotkeys."""
    if not isinstance(labels, list) or not labels:
        raise InvalidInput.one("labels must be a non-empty list", field="labels")
    if len(labels) > MAX_LABELS:
        raise InvalidInput.one(f"at most {MAX_LABELS} labels", field="labels")
    problems: list[Problem] = []
    out: list[dict[str, str | None]] = []
    for i, item in enumerate(labels):
        name, hotkey = (item, None) if isinstance(item, str) else (
            (item.get("name"), item.get("hotkey")) if isinstance(item, dict) else (None, None)
        )
        if not isinstance(name, str) or not name.strip() or len(name) > 200 or not is_storable_text(name):
            problems.append(Problem("a label is a non-empty string of at most 200 characters", field=f"labels[{i}]"))
            continue
        if hotkey is not None and (not isinstance(hotkey, str) or len(hotkey) != 1 or not hotkey.isalnum()):
            problems.append(Problem("a hotkey is one letter or digit", field=f"labels[{i}].hotkey"))
            continue
        out.append({"name": name.strip(), "hotkey": hotkey.lower() if hotkey else None})
    names = [l["name"] for l in out]
    if len(set(names)) != len(names):
        problems.append(Problem("label names must be unique", field="labels"))
    given_keys = [l["hotkey"] for l in out if l["hotkey"]]
    if len(set(given_keys)) != len(given_keys):
        problems.append(Problem("hotkeys must be unique", field="labels"))
    if problems:
        raise InvalidInput("invalid label set", problems)
    free = iter(k for k in DEFAULT_HOTKEYS if k not in given_keys)
    for l in out:
        if not l["hotkey"]:
            l["hotkey"] = next(free, None)
    return out


def create_project(
    session: Session, name: Any, labels: Any, settings: Any = None, *, now: datetime
) -> Project:
    label_set = validate_label_set(labels)
    full = validate_settings(settings)
    tasks.check_label_set(full["task"], [label["name"] for label in label_set])
    project = Project(name=checked_name(session, name), labels=label_set, settings=full, created_at=now,
                      task_kind=full["task"])
    session.add(project)
    session.flush()
    return project


def checked_name(session: Session, name: Any, *, other_than: int | None = None) -> str:
    """A valid project name, stripped, that no other project has."""
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or not is_storable_text(name):
        raise InvalidInput.one("name must be a non-empty string of at most 200 characters", field="name")
    if session.scalar(select(Project.id).where(Project.name == name.strip(), Project.id != (other_than or 0))) is not None:
        raise InvalidInput.one(f"a project named {name.strip()!r} exists already", field="name")
    return name.strip()


def update_settings(session: Session, project: Project, given: Any) -> Project:
    """Change settings; the task only while the project has no label.

    Raises
    ------
    InvalidInput
        An unknown setting or a bad value (each named), or a featurizer that cannot read the
        project's examples.
    Conflict
        A change of ``task`` once the project has labels.
    """
    settings = validate_settings(given, current=project.settings)
    if settings["task"] != project.task_kind and session.scalar(
            select(Label.id).where(Label.project_id == project.id).limit(1)) is not None:
        raise Conflict("the task cannot change once the project has labels (settings.task)")
    if settings["task"] != project.task_kind:  # a project made before a rule changes its settings still
        tasks.check_label_set(settings["task"], label_names(project))
    if settings["featurizer"] != config(project).featurizer:
        from labeling.features import featurizer_problem  # labeling.features reads this module's config

        if problem := featurizer_problem(session, project, settings["featurizer"]):
            raise InvalidInput.one(problem, field="featurizer")
    project.settings, project.task_kind = settings, settings["task"]
    session.flush()
    return project


def get_project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"no project with id {project_id}")
    return project


def find_project(session: Session, key: str) -> Project:
    """Find by id (digits) or by name, for the CLI."""
    project = session.get(Project, int(key)) if key.isdigit() else None
    if project is None:
        project = session.scalar(select(Project).where(Project.name == key))
    if project is None:
        raise NotFound(f"no project with id or name {key!r}")
    return project


def list_projects(session: Session, *, limit: int = 100, offset: int = 0,
                  visible_by: User | None = None) -> list[Project]:
    """Projects in id order; with ``visible_by``, only those that user sees (labeling/access.py)."""
    query = select(Project)
    if visible_by is not None:
        query = query.where(visible_to(visible_by))
    return list(session.scalars(query.order_by(Project.id).limit(limit).offset(offset)))


def check_writable(project: Project) -> None:
    """Refuse work that changes an archived project's data (labels, imports, retrains).

    Raises
    ------
    Conflict
        The project is archived.
    """
    if project.archived_at is not None:
        raise Conflict(f"the project {project.name!r} is archived, so it is read-only; an admin can unarchive it")


def set_archived(session: Session, project: Project, archived: Any, *, actor: audit.Actor, now: datetime) -> Project:
    """Archive (read-only, hidden from annotators, still exportable) or unarchive; audited when
    it changes anything."""
    if not isinstance(archived, bool):
        raise InvalidInput.one("must be true or false", field="archived")
    if archived == (project.archived_at is not None):
        return project
    project.archived_at = now if archived else None
    audit.record(session, actor, "project.archived" if archived else "project.unarchived", project_id=project.id,
                 target=project.name, now=now)
    session.flush()
    return project


def rotate_webhook_secret(session: Session, project: Project, *, actor: audit.Actor, now: datetime) -> str:
    """Give the project a new generated webhook secret and return it (shown once); deliveries
    signed from now on use it."""
    secret = new_webhook_secret()
    project.settings = {**project.settings, "webhook_secret": secret}
    audit.record(session, actor, "project.webhook_secret_rotated", project_id=project.id, target=project.name, now=now)
    session.flush()
    return secret


def label_names(project: Project) -> list[str]:
    return [l["name"] for l in project.labels]


def labeling_progress(session: Session, project_id: int) -> dict[str, int]:
    """Examples and labeled examples: the labeling page's line, on every keypress."""
    examples = session.scalar(select(Project.n_examples).where(Project.id == project_id)) or 0
    labeled = session.scalar(
        select(func.count()).where(Example.project_id == project_id, Example.n_labels > literal_column("0"))
    ) or 0
    return {"examples": examples, "labeled": labeled}


def project_counts(session: Session, project_id: int) -> dict[str, int]:
    """Counts for the project page and API (``labels``: the current labels, undone and replaced
    ones left out); each is one indexed query."""
    progress = labeling_progress(session, project_id)
    examples, labeled = progress["examples"], progress["labeled"]
    # Current labels: each label row replaces at most one, so a first label adds one, an undo
    # (no value) takes one away and a correction (a value that replaces) leaves the count.
    labels = session.scalar(
        select(func.coalesce(func.sum(case((Label.value.is_(None), -1), (Label.replaces_id.is_(None), 1), else_=0)), 0))
        .where(Label.project_id == project_id)
    ) or 0
    open_flags = session.scalar(
        select(func.count()).where(LabelFlag.project_id == project_id, LabelFlag.status == "open")
    ) or 0
    return {"examples": examples, "labeled": labeled, "labels": labels, "open_flags": open_flags}


def champion_version(session: Session, project: Project) -> int | None:
    if project.champion_id is None:
        return None
    return session.scalar(select(ModelVersion.version).where(ModelVersion.id == project.champion_id))
