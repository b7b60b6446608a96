"""Browser tests: the real app over HTTP, driven by Playwright in Debian's Chromium."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.conftest import CHROMIUM, REQUIRE_SERVICES


def pytest_collection_modifyitems(config, items):
    if Path(CHROMIUM).exists() or REQUIRE_SERVICES:
        return
    skip = pytest.mark.skip(reason=f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    for item in items:
        if "e2e" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]}


@pytest.fixture
def live_server_config() -> dict:
    """Service settings for the live server; a test module overrides this fixture to add some."""
    return {}


@pytest.fixture
def live_server(tmp_path, sqlite_template, live_server_config):
    """Serve a fresh app on a free local port; yields (base_url, app)."""
    from app import create_app

    db = tmp_path / "e2e.db"
    shutil.copy(sqlite_template, db)
    # KEY_MIN_VIEW_MS 0: tests press keys as soon as an example shows (test_key_guard.py tests the guard).
    app = create_app({"DATABASE_URL": f"sqlite:///{db}", "SECRET_KEY": "e2e", "KEY_MIN_VIEW_MS": 0, **live_server_config},
                     instance_path=str(tmp_path / "instance"))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", app
    server.shutdown()
    app.extensions["hitl_jobs"].stop()
    app.extensions["hitl_engine"].dispose()
