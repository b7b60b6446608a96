"""`hitl serve` as an operator runs it: the real gunicorn server, over HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HITL = str(Path(sys.executable).with_name("hitl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path, sqlite_template):
    import shutil

    db = tmp_path / "served.db"
    shutil.copy(sqlite_template, db)
    port = _free_port()
    env = {**os.environ, "LABELING_DATABASE_URL": f"sqlite:///{db}", "LABELING_INSTANCE_PATH": str(tmp_path),
           "LABELING_SECRET_KEY": "test", "TMPDIR": str(tmp_path), "LABELING_LOG_LEVEL": "WARNING"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    process = subprocess.Popen([HITL, "serve", "--port", str(port), "--workers", "2"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("hitl serve did not start:\n" + process.stdout.read())
            time.sleep(0.2)
    yield url, process, tmp_path
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def test_serve_says_where_it_serves_and_removes_its_metrics_folder_when_it_stops(server):
    url, process, tmp = server
    folders = list(tmp.glob("hitl-prometheus-*"))
    assert len(folders) == 1 and folders[0].is_dir()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert f"serving on {url}" in output
    assert list(tmp.glob("hitl-prometheus-*")) == []


def test_hitl_help_loads_neither_the_app_nor_the_ml_stack():
    probe = ("import sys; from click.testing import CliRunner; from app.cli import make_cli; "
             "result = CliRunner().invoke(make_cli(), ['--help']); "
             "assert result.exit_code == 0 and 'backup' in result.output, result.output; "
             "print(sorted(m for m in ('sklearn', 'sqlalchemy.orm', 'app.api', 'numpy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
