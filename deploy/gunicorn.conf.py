"""Gunicorn as production runs the sync server: Uvicorn workers (the uvicorn-worker
package; uvicorn.workers is deprecated), Prometheus in multiprocess mode.

    gunicorn -c deploy/gunicorn.conf.py

WORKERS (4) and NOCTIS_BIND (0.0.0.0:8000) come from the environment, like the
server's own NOCTIS_* settings. Workers start without the database (they answer 503
until it is back), so a worker that gunicorn restarts during an outage never stops
the server.
"""

import os
import shutil

from prometheus_client import multiprocess

wsgi_app = "sync_server.app:create_app()"
worker_class = "uvicorn_worker.UvicornWorker"
workers = int(os.environ.get("WORKERS", "4"))
bind = os.environ.get("NOCTIS_BIND", "0.0.0.0:8000")
timeout = 60  # a worker that does not check in this long is restarted (admission keeps them responsive)
graceful_timeout = 30  # SIGTERM: requests in flight get this long to finish
keepalive = 5
accesslog = None  # the Prometheus metrics count requests; errors go to the error log

_METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")


def on_starting(server):
    # Every worker writes its metrics here; files of an earlier run would be counted again.
    if _METRICS_DIR:
        shutil.rmtree(_METRICS_DIR, ignore_errors=True)
        os.makedirs(_METRICS_DIR)


def child_exit(server, worker):
    # A dead worker's live gauges (requests in progress) must not linger in the sums.
    if _METRICS_DIR:
        multiprocess.mark_process_dead(worker.pid)
