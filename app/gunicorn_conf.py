"""gunicorn hooks for ``hitl serve``."""

import os
import shutil


def child_exit(server, worker):  # noqa: ARG001 (gunicorn's signature)
    # A dead worker's live gauges must not linger in the multiprocess metrics.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # noqa: ARG001
    # The metrics folder `hitl serve` made for this server goes with it (not one a caller set).
    folder = os.environ.get("HITL_OWNED_METRICS_DIR")
    if folder and folder == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(folder, ignore_errors=True)
