"""The ``hitl`` command line (also ``flask --app app ...``). Errors exit non-zero with the line."""

from __future__ import annotations

import functools
import secrets
import sys
from pathlib import Path
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from labeling.errors import DomainError, InvalidInput
from labeling.roles import ROLES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

EXIT_INVALID = 1
EXIT_NOT_FOUND = 3
# The audit trail's actor for changes made on the command line (which runs as no user)
CLI_ACTOR = "cli"


@contextmanager
def unit_of_work(*, commit: bool = True) -> Iterator[Session]:
    """A session for one command: committed when the block ends without an error (unless
    ``commit`` is false: reads), rolled back otherwise, closed either way."""
    session = current_app.extensions["hitl_sessionmaker"]()
    try:
        yield session
        if commit:
            session.commit()
    finally:
        session.close()


def domain_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Print a domain error with its lines and fields, exit non-zero; nothing was committed."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except InvalidInput as exc:
            click.echo(f"error: {exc.message}", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            if exc.total > len(exc.problems):
                click.echo(f"  ... and {exc.total - len(exc.problems)} more", err=True)
            sys.exit(EXIT_INVALID)
        except DomainError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(EXIT_NOT_FOUND if type(exc).__name__ == "NotFound" else EXIT_INVALID)

    return wrapper


# --- db -------------------------------------------------------------------------------------

@click.group("db", cls=AppGroup)
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema with Alembic."""
    from labeling import migrate

    url = current_app.config["DATABASE_URL"]
    migrate.upgrade(url, revision)
    click.echo(f"database at revision {migrate.current_revision(url)}")


# --- users ----------------------------------------------------------------------------------

@click.group("users", cls=AppGroup)
def users_group() -> None:
    """Manage users and API tokens."""


@users_group.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", help="Password (at least 8 characters). Prompted for when neither this nor --token is given.")
@click.option("--token", "with_token", is_flag=True, help="Also create an API token; printed alone on the last line.")
@domain_errors
def users_create(name: str, role: str, password: str | None, with_token: bool) -> None:
    """Create a user."""
    from labeling import users
    from labeling.db import utcnow

    if password is None and not with_token:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with unit_of_work() as session:
        user = users.create_user(session, name, role, password=password, now=utcnow(), actor=CLI_ACTOR)
        token = users.issue_token(session, user, name="cli", now=utcnow(), actor=CLI_ACTOR)[1] if with_token else None
    click.echo(f"created {role} {name}")
    if token:
        click.echo(token)


@users_group.command("token")
@click.argument("name")
@domain_errors
def users_token(name: str) -> None:
    """Create another API token for a user; printed alone on the last line."""
    from labeling import users
    from labeling.db import utcnow

    with unit_of_work() as session:
        user = users.find_user(session, name)
        if user is None:
            click.echo(f"error: no user named {name!r}", err=True)
            sys.exit(EXIT_NOT_FOUND)
        token = users.issue_token(session, user, name="cli", now=utcnow(), actor=CLI_ACTOR)[1]
    click.echo(token)


@users_group.command("list")
def users_list() -> None:
    """List users."""
    from labeling import users

    with unit_of_work(commit=False) as session:
        for user in users.list_users(session):
            click.echo(f"{user.id}\t{user.name}\t{user.role}")


# --- projects -------------------------------------------------------------------------------

def _parse_settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    import json

    settings: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise InvalidInput.one("settings are given as KEY=VALUE", field=pair)
        try:
            settings[key] = json.loads(raw)
        except json.JSONDecodeError:
            settings[key] = raw
    return settings


@click.group("projects", cls=AppGroup)
def projects_group() -> None:
    """Manage projects."""


@projects_group.command("create")
@click.argument("name")
@click.option("--labels", required=True, help="Comma-separated label names, e.g. pos,neg.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="A project setting, e.g. overlap=2.")
@domain_errors
def projects_create(name: str, labels: str, settings: tuple[str, ...]) -> None:
    """Create a project; prints its id."""
    from labeling import audit, projects
    from labeling.db import utcnow

    with unit_of_work() as session:
        label_list = [l.strip() for l in labels.split(",") if l.strip()]
        given = _parse_settings(settings)
        project = projects.create_project(session, name, label_list, given, now=utcnow())
        audit.record(session, CLI_ACTOR, "project.created", project_id=project.id, target=project.name, now=utcnow())
    click.echo(f"created project {project.id} {project.name!r}")
    if project.settings.get("webhook_secret") and "webhook_secret" not in given:  # generated: shown once, as the API does
        click.echo(f"webhook secret (shown once; verify deliveries with it): {project.settings['webhook_secret']}")


@projects_group.command("list")
def projects_list() -> None:
    """List projects with their counts."""
    from labeling import projects

    with unit_of_work(commit=False) as session:
        for project in projects.list_projects(session, limit=10**6):
            counts = projects.project_counts(session, project.id)
            click.echo(f"{project.id}\t{project.name}\t{counts['examples']} examples\t{counts['labeled']} labeled")


# --- import / export ------------------------------------------------------------------------

@click.command("import")
@with_appcontext
@click.argument("project")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), help="Default: from the file name.")
@click.option("--source", default="import", show_default=True, help="Name recorded on labels in the file.")
@click.option("--update-duplicates", is_flag=True,
              help="Replace the text/image/features/meta of examples whose external id exists (default: skip them).")
@domain_errors
def import_command(project: str, file: Path, fmt: str | None, source: str, update_duplicates: bool) -> None:
    """Import examples (and any labels) from a JSONL, CSV or Parquet file; all or nothing.

    Every row is checked before any is added; the rows are then added in short transactions,
    so annotators working meanwhile are not held up. If the command is interrupted while adding,
    a running service resumes the import (see ``GET /api/v1/imports/<id>``)."""
    from labeling import audit, imports, projects
    from labeling.db import utcnow
    from labeling.formats import format_for_filename
    from app.jobs import execute_import_in_app, finished_import_run

    fmt = fmt or format_for_filename(file.name)
    if fmt is None:
        raise InvalidInput.one("cannot tell the format from the file name; pass --format", field="format")
    app = current_app._get_current_object()
    with unit_of_work() as session:
        proj = projects.find_project(session, project)
        job = imports.start_import(session, proj, fmt=fmt, source=source, update_duplicates=update_duplicates,
                                   filename=file.name, now=utcnow())
        audit.record(session, CLI_ACTOR, "import.started", project_id=proj.id, target=job.id, now=utcnow(),
                     details={"format": fmt, "filename": file.name, "on_duplicate": "update" if update_duplicates else "skip"})
        with file.open("rb") as stream:
            imports.store_upload(session, job, stream)
        job_id = job.id
    with click.progressbar(length=1000, label="checking and importing", file=sys.stderr) as bar:
        shown = [0]

        def progress(current: Any) -> None:
            done = int(imports.progress(current) * 1000)
            bar.update(max(0, done - shown[0]))
            shown[0] = max(shown[0], done)

        execute_import_in_app(app, job_id, on_progress=progress)
    with unit_of_work(commit=False) as session:
        job = imports.get_import(session, job_id)
        if job.status == "failed":
            if job.n_problems:
                raise imports.invalid_input(job)
            click.echo(f"error: import {job_id} failed: {(job.error or '').splitlines()[0]}", err=True)
            sys.exit(EXIT_INVALID)
        if job.status != "succeeded":
            click.echo(f"import {job_id} is {job.status}; a running service finishes it", err=True)
            sys.exit(EXIT_INVALID)
        dealt = f"{job.updated} duplicates updated" if update_duplicates else f"{job.duplicates} duplicates skipped"
        click.echo(f"imported {job.imported} examples ({dealt}, {job.labels} labels)")
    _run_now(finished_import_run(app, job_id))


def _run_now(run_id: int | None) -> None:
    """A CLI process exits when its command ends: run the job to the end here (or hand it to RQ)."""
    from app.jobs import RQRunner, deliver_webhooks_in_app, execute_run_in_app

    if run_id is None:
        return
    runner = current_app.extensions["hitl_jobs"]
    if isinstance(runner, RQRunner):
        runner.dispatch(run_id)
        runner.notify()
        click.echo(f"run {run_id} queued for the RQ workers")
        return
    execute_run_in_app(current_app._get_current_object(), run_id)
    deliver_webhooks_in_app(current_app._get_current_object())


@click.command("export")
@with_appcontext
@click.argument("project")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "parquet"]), default="jsonl", show_default=True)
@click.option("--snapshot", type=int, help="Snapshot number; default: the current labels.")
@click.option("--annotations", type=click.Choice(["gold", "all"]), default="gold", show_default=True)
@click.option("--include-unlabeled", is_flag=True)
@click.option("--escape-formulas", is_flag=True, help="CSV: prefix every cell that starts with = + - @ with an "
              "apostrophe, so a spreadsheet shows it as text (changes such imported data).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Default: standard output.")
@domain_errors
def export_command(project: str, fmt: str, snapshot: int | None, annotations: str, include_unlabeled: bool,
                   escape_formulas: bool, output: Path | None) -> None:
    """Export labels (streamed) to a file or standard output."""
    from labeling import projects
    from labeling.db import read_in_own_transaction
    from labeling import export
    from labeling.snapshots import get_snapshot

    with unit_of_work(commit=False) as session:
        read_in_own_transaction(session)
        proj = projects.find_project(session, project)
        as_of = get_snapshot(session, proj, snapshot) if snapshot is not None else None
        rows, columns = export.rows_and_columns(session, proj, annotations=annotations, snapshot=as_of,
                                                include_unlabeled=include_unlabeled)
        counted = _count_rows(rows)
        try:
            target = output.open("wb") if output else sys.stdout.buffer
        except OSError as exc:
            click.echo(f"error: cannot write {output}: {exc.strerror}", err=True)
            sys.exit(EXIT_INVALID)
        tmp_ok = False
        try:
            for chunk in export.encode(counted, fmt, columns, escape_formulas=escape_formulas):
                target.write(chunk)
            tmp_ok = True
        finally:
            if output:
                target.close()
                if not tmp_ok:
                    output.unlink(missing_ok=True)
    click.echo(f"exported {counted.count} rows" + (f" to {output}" if output else ""), err=True)


class _count_rows:
    """Count rows as they stream by, and show progress on stderr every 10,000."""

    def __init__(self, rows: Any) -> None:
        self.rows, self.count = rows, 0

    def __iter__(self):
        for row in self.rows:
            self.count += 1
            if self.count % 10000 == 0:
                click.echo(f"\rexported {self.count} rows", err=True, nl=False)
            yield row


@click.command("retrain")
@click.argument("project")
@with_appcontext
@domain_errors
def retrain_command(project: str) -> None:
    """Queue a retrain run and execute it (or hand it to the RQ workers); prints the outcome."""
    from labeling import projects
    from labeling.db import utcnow
    from app.api.shapes import run_json
    from labeling import audit, runs

    with unit_of_work(commit=False) as session:
        proj = projects.find_project(session, project)
        run, created = runs.request_retrain(session, proj, trigger="manual", now=utcnow())
        audit.record(session, CLI_ACTOR, "retrain.requested", project_id=proj.id, target=run.id, now=utcnow(),
                     details={"created": created})
        session.commit()
        run_id = run.id
    if not created:
        click.echo(f"run {run_id} is already {run.status}; not starting another")
        return
    _run_now(run_id)
    with unit_of_work(commit=False) as session:
        run = runs.get_run(session, run_id)
        outcome = run_json(run, runs.model_version_of(session, run))
    click.echo(f"run {run_id}: {outcome['status']}" + (f", model v{outcome['model_version']}" if outcome["model_version"] else "")
               + (f" ({outcome['result'].get('decision') or outcome['result'].get('skipped')})" if outcome["result"] else "")
               + (f"\n{outcome['error']}" if outcome["error"] else ""))
    if outcome["status"] == "failed":
        sys.exit(EXIT_INVALID)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Run an RQ worker for retrain runs and webhook deliveries (needs LABELING_REDIS_URL)."""
    from app.jobs import run_worker

    try:
        run_worker(current_app._get_current_object(), burst=burst)
    except RuntimeError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INVALID)


@click.command("snapshot")
@with_appcontext
@click.argument("project")
@domain_errors
def snapshot_command(project: str) -> None:
    """Freeze the current labels as a numbered snapshot."""
    from labeling import audit, projects
    from labeling.db import utcnow
    from labeling.snapshots import create_snapshot

    with unit_of_work() as session:
        proj = projects.find_project(session, project)
        snap = create_snapshot(session, proj, now=utcnow())
        audit.record(session, CLI_ACTOR, "snapshot.created", project_id=proj.id, target=snap.number, now=utcnow(),
                     details={"labels": snap.n_labels})
    click.echo(f"snapshot {snap.number} with {snap.n_labels} labels")


# --- demo and serve -------------------------------------------------------------------------

@click.command("backup")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@domain_errors
def backup_command(file: Path) -> None:
    """Write a consistent copy of the database to FILE, while the service runs."""
    from labeling.backup import backup

    backup(current_app.config["DATABASE_URL"], file)
    click.echo(f"backed up to {file}")


@click.command("restore")
@with_appcontext
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@domain_errors
def restore_command(file: Path, yes: bool) -> None:
    """Replace the whole database with the backup FILE (stop the service first)."""
    from labeling.backup import restore

    if not yes:
        click.confirm(f"Replace every project, label and user in the database with {file}?", abort=True)
    restore(current_app.config["DATABASE_URL"], file)
    click.echo(f"restored from {file}")


@click.command("demo")
@with_appcontext
@click.option("--admin", "admin_name", default="admin", show_default=True)
@domain_errors
def demo_command(admin_name: str) -> None:
    """Load the offline demo project (handwritten digits) and an admin user; prints the login."""
    from labeling import projects, users
    from labeling.db import utcnow
    from labeling.demo import DEMO_PROJECT, DIGIT_LABELS, digit_rows
    from labeling.errors import NotFound
    from labeling.examples import import_examples
    from labeling.runs import request_after_import

    with unit_of_work() as session:
        password = None
        if users.find_user(session, admin_name) is None:
            password = current_app.config["DEMO_ADMIN_PASSWORD"] or secrets.token_urlsafe(9)
            users.create_user(session, admin_name, "admin", password=password, now=utcnow())
        try:
            project = projects.find_project(session, DEMO_PROJECT)
        except NotFound:
            project = None
        if project is None:
            project = projects.create_project(
                session, DEMO_PROJECT, DIGIT_LABELS, {"featurizer": "features", "retrain_threshold": 20},
                now=utcnow(),
            )
            result = import_examples(session, project, digit_rows(), source="demo", now=utcnow(), random_state=0)
            run_id = request_after_import(session, project, labels=0, now=utcnow())
            click.echo(f"demo project {project.id} {DEMO_PROJECT!r} with {result.imported} examples")
        else:
            run_id = None
            click.echo(f"demo project {project.id} {DEMO_PROJECT!r} exists already")
    _run_now(run_id)
    if password:
        login = current_app.config["PUBLIC_URL"].rstrip("/") + "/login"
        click.echo(f"log in at {login} as {admin_name} with password {password}")
    else:
        click.echo(f"user {admin_name!r} exists already; log in with its password")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn sync worker processes.")
def serve_command(host: str, port: int, workers: int) -> None:
    """Serve the app with gunicorn (sync workers)."""
    from app.wsgi_server import serve

    serve(host=host, port=port, workers=workers)


COMMANDS = (db_group, users_group, projects_group, import_command, export_command, snapshot_command,
            retrain_command, worker_command, backup_command, restore_command, demo_command, serve_command)


def register_flask_cli(app: Flask) -> None:
    for command in COMMANDS:
        if command.name not in app.cli.commands:
            app.cli.add_command(command)


def _create_app(*_args: Any) -> Flask:
    from app import create_app
    from app.jobs import JOB_SETTINGS

    return create_app(JOB_SETTINGS)


class _HitlGroup(FlaskGroup):
    """Lists and finds its own commands without building the app (FlaskGroup builds it to look for
    plugin commands), so ``hitl --help`` answers at once; a command builds it when it runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return self.commands.get(name)


def make_cli() -> FlaskGroup:
    """The ``hitl`` group: the same commands, with the app built from the environment."""
    group = _HitlGroup(name="hitl", create_app=_create_app, add_default_commands=False,
                       add_version_option=False, load_dotenv=False, set_debug_flag=False,
                       help="Human-in-the-loop labeling service.")
    for command in COMMANDS:
        group.add_command(command)
    return group


def main() -> None:
    make_cli().main(prog_name="hitl")
