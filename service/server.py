"""The production server: gunicorn, the app built once in the master and forked into workers.

Import this module only after `PROMETHEUS_MULTIPROC_DIR` is set (see `cli.serve`): the metrics
client chooses between in-process and multiprocess storage when it is first imported.
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

from gunicorn.app.base import BaseApplication

from service.logs import logging_config
from service.metrics import mark_worker_dead, reserve_worker_files
from service.settings import MULTIPROC_ENV, Settings
from service.web.app import create_app
from service.web.runtime import Runtime

log = logging.getLogger("spinefoot")


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self._app, self._options = app, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._app


def gunicorn_options(settings: Settings) -> dict[str, Any]:
    """gevent workers: each connection is a greenlet, so a client that sends slowly or not at
    all holds a connection while the worker serves others (sync workers, one per core, were
    taken down by 2 slow clients). The engine never yields, so one process still evaluates one
    request at a time, on a thread-less host; processes add throughput.

    `timeout` restarts a worker stuck on one request; `graceful_timeout` is how long SIGTERM
    waits for in-flight requests before the workers are killed.
    """
    return {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "gevent",
        "worker_connections": settings.worker_connections,
        "timeout": settings.request_timeout,
        "graceful_timeout": settings.request_timeout,
        "preload_app": True,
        "accesslog": None,
        "logconfig_dict": logging_config(settings.log_level, settings.log_format),
        "proc_name": "spinefoot",
        "child_exit": _child_exit,
        "control_socket_disable": True,  # gunicornc is not used; the image has no writable home
    }


def _child_exit(_server: Any, worker: Any) -> None:
    mark_worker_dead(worker.pid)


def run(settings: Settings) -> None:
    """Build the app (loading the knowledge base: a bad one raises here) and serve until SIGTERM."""
    serve_app(create_app(settings), settings)


def serve_app(app: Any, settings: Settings) -> None:
    tune_garbage_collector()
    options = gunicorn_options(settings)
    options["post_fork"] = lambda _server, _worker: reserve_metric_files(app.extensions["spinefoot"])
    _Server(app, options).run()


def reserve_metric_files(rt: Runtime) -> None:
    """In each new worker: allocate its metric files, or mark it unwritable (it answers 503;
    a crash would be restarted into the same full disk, over and over)."""
    try:
        reserve_worker_files(os.environ[MULTIPROC_ENV], os.getpid())
    except OSError as exc:
        rt.metrics_writable = False
        log.error("metric files could not be allocated; answering 503: %s", exc.strerror)


def tune_garbage_collector() -> None:
    """What exists now (modules, knowledge base, compiled rules) lives as long as the process:
    freeze it out of the collector's scans (before the fork, so workers share its pages), and
    collect young objects less often, since request data is acyclic JSON. Measured in process:
    p99 of a 50-entry assessment 25.8 -> 7.4 ms, a 5,000-entry one 778 -> 546 ms (median)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
