"""The sync server as its own process, as production runs it: killable, restartable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.postgres import child_pids, free_port


def answers(url: str, path: str) -> bool:
    try:
        return httpx.get(f"{url}{path}", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], failure: str, seconds: float = 60) -> None:
    """Poll until ready; RuntimeError(failure) if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.1)


class ServerProcess:
    """``python -m sync_server serve`` on a loopback port; settings as NOCTIS_* overrides."""

    def __init__(self, database_url: str, data_dir: str, port: int | None = None, **settings: object) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "NOCTIS_DATABASE_URL": database_url, "NOCTIS_DATA_DIR": data_dir}
        env.update({f"NOCTIS_{key.upper()}": str(value) for key, value in settings.items()})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sync_server", "serve", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: answers(self.url, "/readyz"), self.process, "server did not become ready")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


REPO_ROOT = Path(__file__).resolve().parent.parent


class GunicornServer:
    """The server as production runs it: gunicorn with deploy/gunicorn.conf.py and its
    Uvicorn workers, Prometheus in multiprocess mode."""

    def __init__(
        self, database_url: str, data_dir: str, port: int | None = None, workers: int = 4, **settings: object
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_dir = os.path.join(data_dir, "metrics")
        self.env = {
            **os.environ,
            "NOCTIS_DATABASE_URL": database_url,
            "NOCTIS_DATA_DIR": data_dir,
            # Given, not generated: four workers starting at once must sign with one key.
            "NOCTIS_JWT_SECRET": "chaos-" + "s" * 32,
            "NOCTIS_OTA_SIGNING_KEY": "11" * 32,
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            "WORKERS": str(workers),
            "NOCTIS_BIND": f"127.0.0.1:{self.port}",
            **{f"NOCTIS_{key.upper()}": str(value) for key, value in settings.items()},
        }
        self.workers = workers
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started = lambda: len(self.worker_pids()) >= self.workers and answers(self.url, "/healthz")  # noqa: E731
        wait_until(started, self.process, "gunicorn did not start")

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)

    def kill_worker(self) -> int:
        pid = self.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        return pid

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None
