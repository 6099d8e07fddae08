"""The sync server as its own process, as production runs it: killable, restartable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from tests.postgres import free_port


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
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
