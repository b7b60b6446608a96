"""The data model: SQLAlchemy 2.0 typed tables.

Labels are append-only events: an undo or a correction is a new row that names the row it
replaces in ``replaces_id``. The current labels of an example are the rows nobody replaced and
whose value is not null (an undo row has a null value).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import Mapped, mapped_column

from labeling.models_base import NAMING, Base, TZDateTime  # noqa: F401  (imported from here elsewhere)
# The people tables live in their own module; importing them here registers them with ``Base``
# and keeps ``from labeling.models import User`` working.
from labeling.models_people import (MEMBER_ROLES, ApiToken, AuditEvent, LoginFailure, ProjectMember,  # noqa: F401
                                    User)


# An annotation as stored (labeling/tasks.py): a label name of at most 200 characters, or a
# multi-label project's JSON array of names, which can be longer. Unbounded text on PostgreSQL;
# SQLite does not enforce a declared length, so its columns keep the declaration they had.
ANNOTATION = String(200).with_variant(Text(), "postgresql")

RUN_STATUSES = ("queued", "running", "succeeded", "failed")
MODEL_STATUSES = ("candidate", "champion", "rejected")
# Closed without a verdict: superseded (its label was undone or replaced), withdrawn (a later check found it likely right).
FLAG_STATUSES = ("open", "confirmed", "corrected", "dismissed", "superseded", "withdrawn")
# Why a label was flagged: a model that never saw it disagrees, its annotators disagree, or its
# annotator kept it although the champion warned.
FLAG_REASONS = ("model_disagrees", "annotators_disagree", "kept_warning")


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    task_kind: Mapped[str] = mapped_column(String(32), default="single_label")
    # Ordered label set: [{"name": "pos", "hotkey": "1"}, ...]
    labels: Mapped[list[Any]] = mapped_column(JSON)
    # Validated by labeling.projects; defaults filled in there.
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(TZDateTime())
    # Highest label id already counted towards a retrain request (threshold is ">=" on the rest).
    retrain_label_mark: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Examples in the project, kept by every insert (import, predict's enqueue) in its own
    # transaction: counting a million rows on every dashboard view is too slow.
    n_examples: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Bumped by every import that replaces examples' content in place: with the count and the
    # newest example, it says whether the pool a cached featurizer was fitted on has changed.
    pool_revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    champion_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id", use_alter=True, ondelete="SET NULL"))
    # Set while archived: read-only (no labels, imports or retrains), hidden from annotators.
    archived_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    # Highest label id the last label check judged (None: none has): labels above it are new to
    # that check; those at or below it that it did not doubt (LabelDoubt) it found likely right.
    label_check_mark: Mapped[int | None] = mapped_column(BigInteger)


class Example(Base):
    __tablename__ = "examples"
    __table_args__ = (
        UniqueConstraint("project_id", "external_id", name="uq_examples_project_external"),
        # Serving is an index search: the best example still wanting labels comes first.
        Index(
            "ix_examples_queue",
            "project_id",
            text("priority DESC"),
            "id",
            # SQLite uses a partial index only when the query repeats its WHERE term verbatim,
            # and SQLAlchemy renders a boolean test there as "needs_labels = 1".
            sqlite_where=text("needs_labels = 1"),
            postgresql_where=text("needs_labels"),
        ),
        # Random picks (holdout, random share): a uniform draw is an index search on random_key.
        Index("ix_examples_random", "project_id", "random_key",
              sqlite_where=text("needs_labels = 1"), postgresql_where=text("needs_labels")),
        # The dashboard's "labeled" count reads only labeled rows (the query says "n_labels > 0"
        # literally, for SQLite's partial-index matching).
        Index("ix_examples_labeled", "project_id",
              sqlite_where=text("n_labels > 0"), postgresql_where=text("n_labels > 0")),
        # Reading a project's examples in id order, a chunk at a time (export, re-scoring): a
        # range scan. Without it both databases scanned the project and sorted, once per chunk.
        Index("ix_examples_project_id_id", "project_id", "id"),
        # Finding a user's live lease: only leased rows are in it, so it stays tiny.
        Index("ix_examples_lease_user", "lease_user_id",
              sqlite_where=text("lease_user_id IS NOT NULL"), postgresql_where=text("lease_user_id IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(255))
    # {"text"?: str, "image"?: str, "meta"?: {...}}
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # float32 vector as raw bytes: cheap to load for a million rows.
    features: Mapped[bytes | None] = mapped_column(LargeBinary)
    priority: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # Uniform in [0, 1), drawn once: the order of random picks.
    random_key: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    scored_by_version: Mapped[int | None] = mapped_column(Integer)
    predicted_label: Mapped[str | None] = mapped_column(ANNOTATION)
    confidence: Mapped[float | None] = mapped_column(Float)
    # The model's top probabilities when it last scored the example ({label: probability}, at
    # most three, highest first), written with predicted_label: the suggestion shown while labeling.
    suggestion_probs: Mapped[dict[str, float] | None] = mapped_column(JSON)
    n_labels: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    needs_labels: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    in_holdout: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Served by a random pick (``random_share``), not by the model: what the learning curve's
    # random-sampling baseline is trained on.
    random_pick: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # Quality-weighted consensus of several annotators (set by a retrain), and over how many
    # current labels it was taken: exports use it while that is still the number of labels.
    gold_label: Mapped[str | None] = mapped_column(ANNOTATION)
    gold_n: Mapped[int | None] = mapped_column(Integer)
    lease_id: Mapped[int | None] = mapped_column(BigInteger)
    lease_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lease_expires_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    # What the lease holder's page was shown, set when the lease is served (labeling/queue.py):
    # the suggestion mode ("off", "blind", "unscored", "show", "preselect") and the suggested
    # label; the label submitted under the lease records these, not a later model's prediction.
    lease_suggestion_mode: Mapped[str | None] = mapped_column(String(16))
    lease_suggested: Mapped[str | None] = mapped_column(ANNOTATION)
    created_at: Mapped[datetime] = mapped_column(TZDateTime())


class ExampleEmbedding(Base):
    """A text example's sentence embedding, computed once (encoding costs ~5 ms a text) and
    reused by every retrain and re-scoring. Its own table: the queue reads ``examples`` rows,
    which stay small."""

    __tablename__ = "example_embeddings"

    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True)
    # float32 vector as raw bytes.
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("annotator_id", "idempotency_key", name="uq_labels_annotator_key"),
        Index("ix_labels_project_id_id", "project_id", "id"),
        Index("ix_labels_example_annotator", "example_id", "annotator_id"),
        # "N by you today" on every keypress of the labeling page: a range of one person's day.
        Index("ix_labels_project_annotator_created", "project_id", "annotator_id", "created_at"),
        # The dashboard's suggested-vs-blind comparison reads only labels given with suggestions on.
        Index("ix_labels_suggestion_mode", "project_id", sqlite_where=text("suggestion_mode IS NOT NULL"),
              postgresql_where=text("suggestion_mode IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"))
    annotator_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Null for an undo event.
    value: Mapped[str | None] = mapped_column(ANNOTATION)
    created_at: Mapped[datetime] = mapped_column(TZDateTime())
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"), unique=True)
    # "annotator", "undo", "review", "review_undo", "mistake_check", "import:<name>"
    source: Mapped[str] = mapped_column(String(100), default="annotator")
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    # The champion's suggestion when it disagreed strongly at submit time, and what was chosen.
    warned_suggestion: Mapped[str | None] = mapped_column(ANNOTATION)
    warned_confidence: Mapped[float | None] = mapped_column(Float)
    # What the labeling page showed, decided by the server at submit (labeling/suggestions.py):
    # null when suggestions were off, else "blind", "show", "preselect" or "unscored" (on, but the
    # model had not scored the example); ``suggested`` is the suggested label (null unless shown).
    suggestion_mode: Mapped[str | None] = mapped_column(String(16))
    suggested: Mapped[str | None] = mapped_column(ANNOTATION)


class Snapshot(Base):
    """An immutable label-set version: the current labels as of label id ``max_label_id``.

    Label rows are append-only, so this pair of numbers fixes the set forever.
    """

    __tablename__ = "snapshots"
    __table_args__ = (UniqueConstraint("project_id", "number", name="uq_snapshots_project_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    max_label_id: Mapped[int] = mapped_column(BigInteger)
    n_labels: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(TZDateTime())
    reason: Mapped[str] = mapped_column(String(50), default="manual")
    # The project's highest example id then: later examples are not in it (None: taken before
    # this was kept, by migration 0010).
    max_example_id: Mapped[int | None] = mapped_column(BigInteger)


class ExampleRevision(Base):
    """An example's content before an import replaced it (``update_duplicates``): what snapshots
    up to ``last_snapshot`` saw. Kept only when a snapshot could have seen it."""

    __tablename__ = "example_revisions"

    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True)
    last_snapshot: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    features: Mapped[bytes | None] = mapped_column(LargeBinary)


class SnapshotGold(Base):
    """The retrain's consensus for a multi-annotated example of its snapshot: later retrains
    change ``Example.gold_label``, not what this snapshot's export says."""

    __tablename__ = "snapshot_golds"
    # Read by example (an export chunk's ids, a project's delete).
    __table_args__ = (Index("ix_snapshot_golds_example_id", "example_id"),)

    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshots.id", ondelete="CASCADE"), primary_key=True)
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[str] = mapped_column(ANNOTATION)
    # How many current labels it was taken over: it holds while the example still has as many.
    n_labels: Mapped[int] = mapped_column(Integer)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("project_id", "version", name="uq_models_project_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    trained_at: Mapped[datetime] = mapped_column(TZDateTime())
    n_labels: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("retrain_runs.id", use_alter=True))
    artifact: Mapped[bytes] = mapped_column(LargeBinary)
    artifact_sha256: Mapped[str] = mapped_column(String(64))


class RetrainRun(Base):
    __tablename__ = "retrain_runs"
    __table_args__ = (
        # At most one queued or running run per project, enforced by the database.
        Index("uq_runs_one_active", "project_id", unique=True,
              sqlite_where=text("status IN ('queued', 'running')"),
              postgresql_where=text("status IN ('queued', 'running')")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TZDateTime())
    started_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshots.id"))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LabelFlag(Base):
    __tablename__ = "label_flags"
    __table_args__ = (Index("ix_flags_project_status_score", "project_id", "status", "score"),
                      Index("ix_flags_example_id", "example_id"),
                      # Deleting a project's labels and runs checks the flags that point at them.
                      Index("ix_flags_resolution_label_id", "resolution_label_id"),
                      Index("ix_flags_run_id", "run_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), index=True)
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"))
    given: Mapped[str] = mapped_column(ANNOTATION)
    suggested: Mapped[str | None] = mapped_column(ANNOTATION)
    # Higher is more suspicious, in [0, 1].
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(TZDateTime())
    run_id: Mapped[int | None] = mapped_column(ForeignKey("retrain_runs.id"))
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    resolved_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    resolution_label_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"))


class LabelDoubt(Base):
    """A label the project's last label check found more likely wrong than right. A model flag on
    a label that check judged needs its doubt too: one check's burst of false alarms (its noise
    estimate inflated at one retrain) waits for a second opinion instead of reaching reviewers."""

    __tablename__ = "label_doubts"

    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    posterior: Mapped[float] = mapped_column(Float)


class WebhookDelivery(Base):
    """An outbox row, written in the transaction of its event and delivered after commit."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhooks_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[datetime] = mapped_column(TZDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)


class WebhookAttempt(Base):
    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(TZDateTime())
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)


class Skip(Base):
    """An annotator passed on an example; it is not served to them again."""

    __tablename__ = "skips"
    __table_args__ = (UniqueConstraint("example_id", "user_id", name="uq_skips_example_user"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    example_id: Mapped[int] = mapped_column(ForeignKey("examples.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(TZDateTime())


class ImportJob(Base):
    """An import running in the background (labeling/imports.py), its file in ``import_uploads``;
    ``rows_published`` is committed with each chunk of rows, so a job cut short resumes there."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # uploading -> queued -> running -> succeeded | failed
    status: Mapped[str] = mapped_column(String(16), index=True)
    phase: Mapped[str | None] = mapped_column(String(16))  # running: validating | publishing
    format: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str | None] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(60))
    update_duplicates: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    rename: Mapped[dict[str, str] | None] = mapped_column(JSON)  # column -> field (the import page's mapping)
    # columns no field takes: "meta" | "drop" (the import page), NULL: as the API treats them
    unknown_columns: Mapped[str | None] = mapped_column(String(8))
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rows_valid: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    rows_published: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    imported: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    labels: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    updated: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    problems: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    n_problems: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    problem_groups: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)  # labeling/problem_groups.py
    error: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("retrain_runs.id", ondelete="SET NULL"))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(TZDateTime())
    started_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(TZDateTime())


class ImportUpload(Base):
    """An import's file, in pieces of up to 1 MiB, deleted when the import finishes (kept a while
    after it failed on its input, so the import page can map it again: labeling/uploads.py)."""

    __tablename__ = "import_uploads"

    import_id: Mapped[int] = mapped_column(ForeignKey("import_jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
