"""`hitl serve` as an operator runs it: the real gunicorn server, over HTTP."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

HITL = str(Path(sys.executable).with_name("hitl"))
ROOT = Path(__file__).resolve().parents[2]
NGINX = os.environ.get("LABELING_TEST_NGINX", "/usr/sbin/nginx")
REQUIRE_SERVICES = os.environ.get("CI", "").lower() == "true" or os.environ.get("LABELING_REQUIRE_SERVICES") == "1"


def _healthz(url: str, timeout: float) -> int:
    with urllib.request.urlopen(url + "/healthz", timeout=timeout) as response:
        return response.status


def _slow_posts(port: int, n: int) -> list[socket.socket]:
    """Clients that announce a body and send a few bytes of it, then nothing (as an attacker would)."""
    held = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  b"Content-Length: 10000\r\n\r\nname=a")
        held.append(s)
    return held


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


def test_slow_clients_starve_bare_workers(server):
    url, _, _ = server
    port = int(url.rsplit(":", 1)[1])
    held = _slow_posts(port, 3)  # more than the server's two workers
    try:
        time.sleep(0.5)
        with pytest.raises(OSError):  # the documented reason for the buffering front below
            _healthz(url, timeout=2)
    finally:
        for s in held:
            s.close()


@pytest.fixture
def nginx(server, tmp_path):
    if not Path(NGINX).exists():
        if REQUIRE_SERVICES:
            pytest.fail(f"nginx is needed at {NGINX} (apt-get install nginx-light)")
        pytest.skip("nginx is not installed")
    url, _, _ = server
    port = _free_port()
    site = (ROOT / "deploy" / "nginx-hitl.conf").read_text()
    site = site.replace("server 127.0.0.1:5000;", f"server {url.removeprefix('http://')};")
    site = site.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    temp = tmp_path / "nginx"
    temp.mkdir()
    paths = " ".join(f"{kind}_temp_path {temp / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (temp / "nginx.conf").write_text(
        # user: as root, workers would otherwise run as nobody, who cannot write in the test's folder
        f"daemon off; user {getpass.getuser()}; pid {temp / 'nginx.pid'}; error_log {temp / 'error.log'};\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{ access_log off; {paths}\n{site}\n}}\n")
    process = subprocess.Popen([NGINX, "-c", str(temp / "nginx.conf"), "-p", str(temp)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    front = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            _healthz(front, timeout=2)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("nginx did not start: " + (process.stderr.read() or ""))
            time.sleep(0.1)
    yield front, port
    process.terminate()
    process.wait(10)


def test_behind_the_documented_nginx_slow_clients_starve_nothing(nginx):
    front, port = nginx
    held = _slow_posts(port, 20)
    try:
        time.sleep(0.5)
        started = time.monotonic()
        assert _healthz(front, timeout=2) == 200
        assert time.monotonic() - started < 2
    finally:
        for s in held:
            s.close()


def test_the_documented_nginx_refuses_large_bodies_except_on_imports(nginx, server):
    import json

    front, _ = nginx
    _, _, tmp = server
    big = b"x" * (2 * 1024**2)
    request = urllib.request.Request(front + "/login", data=big, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 413
    env = {**os.environ, "LABELING_DATABASE_URL": f"sqlite:///{tmp / 'served.db'}", "LABELING_INSTANCE_PATH": str(tmp),
           "LABELING_SECRET_KEY": "test"}
    made = subprocess.run([HITL, "users", "create", "bot", "--role", "admin", "--token"], env=env,
                          capture_output=True, text=True, check=True)
    headers = {"Authorization": f"Bearer {made.stdout.strip().splitlines()[-1]}", "Content-Type": "application/json"}

    def post(path, body):
        with urllib.request.urlopen(urllib.request.Request(front + path, data=json.dumps(body).encode(),
                                                           method="POST", headers=headers), timeout=60) as response:
            return response.status, json.loads(response.read())

    status, project = post("/api/v1/projects", {"name": "big", "labels": ["a", "b"]})
    assert status == 201
    rows = [{"external_id": str(i), "text": "x" * 1000} for i in range(2000)]  # about 2 MB: an import may
    status, result = post(f"/api/v1/projects/{project['id']}/examples", {"examples": rows})
    assert status == 201 and result["imported"] == 2000
