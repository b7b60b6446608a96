"""gunicorn hooks for ``hitl serve``."""


def child_exit(server, worker):  # noqa: ARG001 (gunicorn's signature)
    # A dead worker's live gauges must not linger in the multiprocess metrics.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
