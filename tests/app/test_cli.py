"""The hitl command line: what scripts rely on, and clear errors that leave nothing half-written."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select

from app.cli import make_cli
from labeling.models import Example, Label, Project, User


@pytest.fixture
def hitl(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("LABELING_DATABASE_URL", db_url)
    monkeypatch.setenv("LABELING_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("LABELING_SECRET_KEY", "test")
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(make_cli(), list(args), input=input, catch_exceptions=False)

    return run


def count(db_url, model, *where):
    engine = create_engine(db_url)
    with engine.connect() as conn:
        value = conn.execute(select(func.count()).select_from(model).where(*where)).scalar()
    engine.dispose()
    return value


def test_users_create_with_token_prints_the_token_last(hitl):
    result = hitl("users", "create", "bot", "--role", "annotator", "--token")
    assert result.exit_code == 0
    assert result.output.strip().splitlines()[-1].startswith("hitl_")


def test_users_create_rejects_bad_input(hitl, db_url):
    assert hitl("users", "create", "x", "--role", "boss", "--token").exit_code == 2
    result = hitl("users", "create", "bad name!", "--role", "admin", "--password", "longenough")
    assert result.exit_code == 1 and "field 'name'" in result.output
    result = hitl("users", "create", "shorty", "--role", "admin", "--password", "short")
    assert result.exit_code == 1 and "password" in result.output
    hitl("users", "create", "dup", "--role", "admin", "--password", "longenough")
    result = hitl("users", "create", "dup", "--role", "admin", "--password", "longenough")
    assert result.exit_code == 1 and "exists already" in result.output
    assert count(db_url, User) == 1


def test_projects_create_and_bad_settings(hitl, db_url):
    result = hitl("projects", "create", "Reviews", "--labels", "pos,neg", "--set", "overlap=2")
    assert result.exit_code == 0 and "created project" in result.output
    result = hitl("projects", "create", "Other", "--labels", "a,b", "--set", "colour=blue")
    assert result.exit_code == 1 and "settings.colour" in result.output and "valid ones are" in result.output
    result = hitl("projects", "create", "Dupes", "--labels", "a,a")
    assert result.exit_code == 1 and "unique" in result.output
    assert count(db_url, Project) == 1


def test_import_reports_lines_and_writes_nothing(hitl, db_url, tmp_path):
    hitl("projects", "create", "P", "--labels", "pos,neg")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"external_id": "a", "text": "fine"}\n{"external_id": "b", "text": "x", "label": "maybe"}\n{"external_id": "c", "text": \n')
    result = hitl("import", "P", str(bad))
    assert result.exit_code == 1
    assert "line 2, field 'label'" in result.output and "line 3" in result.output
    assert count(db_url, Example) == 0


def test_import_then_export_round_trip(hitl, db_url, tmp_path):
    hitl("projects", "create", "P", "--labels", "pos,neg")
    good = tmp_path / "good.csv"
    good.write_text("external_id,text,label\n1,great film,pos\n2,awful,neg\n3,\"multi\nline\",\n")
    result = hitl("import", "P", str(good))
    assert result.exit_code == 0, result.output
    assert "imported 3 examples" in result.output and "2 labels" in result.output
    assert count(db_url, Label) == 2
    out = tmp_path / "out.jsonl"
    result = hitl("export", "P", "--format", "jsonl", "-o", str(out))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {(r["external_id"], r["label"]) for r in rows} == {("1", "pos"), ("2", "neg")}


def test_export_into_a_missing_directory_is_an_error_line(hitl, tmp_path):
    hitl("projects", "create", "P", "--labels", "pos,neg")
    result = hitl("export", "P", "-o", str(tmp_path / "missing" / "out.csv"))
    assert result.exit_code == 1 and result.output.startswith("error: cannot write ") and "Traceback" not in result.output


def test_a_project_created_with_a_webhook_shows_its_secret_once(hitl, monkeypatch):
    monkeypatch.setenv("LABELING_WEBHOOK_ALLOW_PRIVATE", "true")
    result = hitl("projects", "create", "Hooked", "--labels", "a,b", "--set", "webhook_url=http://127.0.0.1:9/h")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].split(": ")[-1].startswith("whsec_")


def test_unknown_project_exits_non_zero(hitl, tmp_path):
    result = hitl("export", "nope", "--format", "csv")
    assert result.exit_code == 3 and "no project" in result.output


def test_demo_loads_the_digits(hitl, db_url):
    result = hitl("demo")
    assert result.exit_code == 0, result.output
    assert "log in at http://127.0.0.1:5000/login as admin with password" in result.output
    assert count(db_url, Example) == 1797
    assert "exists already" in hitl("demo").output
    assert count(db_url, Example) == 1797


def test_db_upgrade_through_the_installed_script(tmp_path):
    env = {**os.environ, "LABELING_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
           "LABELING_INSTANCE_PATH": str(tmp_path / "instance")}
    hitl_bin = os.path.join(os.path.dirname(sys.executable), "hitl")
    done = subprocess.run([hitl_bin, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    from alembic.script import ScriptDirectory

    from labeling.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert f"database at revision {head}" in done.stdout
    done = subprocess.run([hitl_bin, "users", "create", "bot", "--role", "admin", "--token"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1].startswith("hitl_")


def test_backup_and_restore_round_trip(hitl, db_url, tmp_path):
    assert hitl("projects", "create", "kept", "--labels", "a,b").exit_code == 0
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"external_id": str(i), "text": f"t {i}", "label": "ab"[i % 2]}) + "\n"
                            for i in range(50)))
    assert hitl("import", "kept", str(rows)).exit_code == 0
    backup_file = tmp_path / "backup.bin"
    result = hitl("backup", str(backup_file))
    assert result.exit_code == 0 and backup_file.stat().st_size > 0
    assert hitl("projects", "create", "after-the-backup", "--labels", "a,b").exit_code == 0
    assert hitl("restore", str(backup_file), input="n\n").exit_code != 0  # asked, refused: nothing changed
    assert count(db_url, Project) == 2
    result = hitl("restore", str(backup_file), "--yes")
    assert result.exit_code == 0, result.output
    assert count(db_url, Project) == 1 and count(db_url, Example) == 50 and count(db_url, Label) == 50
    assert hitl("restore", str(tmp_path / "missing.bin"), "--yes").exit_code == 1
