"""A throwaway PostgreSQL server for the test session: initdb in a temp dir, a free port.

The machine has the PostgreSQL binaries but no running server; CI runs as root, and
initdb refuses root, so the server runs as the ``postgres`` system user then.

Servers preload TimescaleDB when it is installed (``make test`` builds it with the
shared script): that is what production runs. ``PostgresServer(timescaledb=False)`` is
the plain PostgreSQL the product also supports.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def child_pids(pid: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # The command name may hold spaces: the fields after its closing ')' are fixed.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                children.append(int(stat.parent.name))
    return children


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL binaries not found (apt-get install postgresql)")


def timescaledb_installed() -> bool:
    return any((_bindir().parent / "lib").glob("timescaledb*.so"))


def require_timescaledb() -> None:
    """CI must test TimescaleDB; a developer without the shared build script skips it."""
    if timescaledb_installed():
        return
    message = "TimescaleDB is not installed: make test builds it with ../shared/tools/timescaledb/build.sh"
    if os.environ.get("CI"):
        raise RuntimeError(message)
    import pytest

    pytest.skip(message)


class PostgresServer:
    """``with PostgresServer() as pg:`` gives ``pg.url``; ``stop()``/``start()`` simulate an outage."""

    def __init__(self, timescaledb: bool | None = None) -> None:
        self.bindir = _bindir()
        self.timescaledb = timescaledb_installed() if timescaledb is None else timescaledb
        self.root = Path(tempfile.mkdtemp(prefix="noctis-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data, self.port = self.root / "data", free_port()
        self.url = f"postgresql+asyncpg://noctis@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bindir / tool), *args],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        if self.timescaledb:
            # No background scheduler: this build's scheduled jobs fail on PostgreSQL 15
            # (shared/tools/timescaledb/README.md), and tests run a policy's job themselves.
            options += " -c shared_preload_libraries=timescaledb -c timescaledb.max_background_workers=0"
            options += " -c timescaledb.telemetry_level=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def kill(self) -> None:
        """kill -9 of the postmaster and every backend, as a crash or the OOM killer would."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        family = [postmaster, *child_pids(postmaster)]
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while any(Path(f"/proc/{pid}").exists() for pid in family) and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> PostgresServer:
        try:
            self._run("initdb", "-D", str(self.data), "-U", "noctis", "--auth=trust", "-E", "UTF8", "--no-sync")
            self.start()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped by the test
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
