"""One host-firmware process: the device, driven over its stdin command interface."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np

from noctis_contract.features import dequantize

REPO = Path(__file__).resolve().parent.parent
BINARY = REPO / "edge_firmware" / "build" / "host" / "noctis-device"


def build_firmware() -> Path:
    """Build noctis-device if it is missing or older than its sources (needs g++, libcurl, libsodium)."""
    make = shutil.which("make") or "make"
    result = subprocess.run([make, "-s", "-C", str(REPO / "edge_firmware"), "device"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            "could not build the host firmware (needs g++, libcurl4-openssl-dev, libsodium-dev):\n" + result.stderr
        )
    return BINARY


class DeviceDied(Exception):
    """The process ended (a torn flash write, or it was killed) before it answered."""


class FirmwareDevice:
    """A device with its flash and NVS files in ``workdir``; survives its own restarts."""

    def __init__(
        self,
        workdir: Path,
        server: str,
        device_id: str,
        secret: str,
        sectors: int = 2048,
        seed: int = 1,
        tasks: bool = False,
    ) -> None:
        """server, device_id and secret are provisioned at each start; empty: the device
        uses what its NVS holds (provisioned over its console). tasks: sampling and the
        network in two threads, as the board runs them (`epoch` answers at once)."""
        self.tasks = tasks
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir, self.server, self.id, self.secret = workdir, server, device_id, secret
        self.sectors, self.seed = sectors, seed
        self.generated: dict[int, int] = {}  # incarnation -> epochs it made (its next seq)
        self.boots = 0
        self.boot_ms = 0  # simulated time at which the current process started
        self.process: subprocess.Popen[str] | None = None
        self.incarnation = 0
        self.held = 0  # epochs waiting for their edge stage at the last sync (the model's lookahead)

    @property
    def nvs(self) -> Path:
        return self.workdir / "nvs"

    def start(self, now_ms: int) -> None:
        self.boots += 1
        self.boot_ms = now_ms
        command = [
            str(BINARY),
            "--flash", str(self.workdir / "flash"),
            "--nvs", str(self.nvs),
            "--sectors", str(self.sectors),
            "--seed", str(self.seed * 1000 + self.boots),
        ]  # fmt: skip
        if self.server:
            command += ["--server", self.server, "--device-id", self.id, "--secret", self.secret]
        if self.tasks:
            command += ["--tasks", "1"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        boot = self._read()
        fields = dict(part.split("=") for part in boot.split()[1:])
        self._made(int(fields["incarnation"]), int(fields["next_seq"]))

    def _made(self, incarnation: int, next_seq: int) -> None:
        self.incarnation = incarnation
        self.generated[incarnation] = max(self.generated.get(incarnation, 0), next_seq)

    def _read(self) -> str:
        assert self.process and self.process.stdout
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            raise DeviceDied
        return line.strip()

    def run(self, lines: list[str]) -> list[str]:
        """Send commands and read their answers (pipelined: all are written first)."""
        assert self.process and self.process.stdin
        try:
            self.process.stdin.write("".join(line + "\n" for line in lines))
            self.process.stdin.flush()
        except BrokenPipeError as exc:
            self.process.wait()
            raise DeviceDied from exc
        answers = []
        for _ in lines:
            answer = self._read()
            if answer.startswith("ok ") and len(answer.split()) == 3:
                _, incarnation, next_seq = answer.split()
                self._made(int(incarnation), int(next_seq))
            answers.append(answer)
        return answers

    def record(self, now_ms: int, codes: np.ndarray, stage: int | None = None) -> list[str]:
        """Lines for one epoch of sensor data that ended at now_ms (simulated time)."""
        values = " ".join("nan" if np.isnan(v) else f"{v:.6g}" for v in dequantize(codes[None, :])[0])
        return [f"time {now_ms - self.boot_ms}", f"epoch {values} {-1 if stage is None else stage}"]

    def sync(self, now_ms: int) -> tuple[int, int]:
        """Let the device upload; returns (ms it wants to wait, epochs it would upload now).
        Epochs waiting for their edge stage stay on the device (counted in ``held``)."""
        _, answer = self.run([f"time {now_ms - self.boot_ms}", "sync"])
        _, wait, ready, _, held = answer.split()
        self.held = int(held)
        return int(wait), int(ready)

    def status(self) -> dict[str, int]:
        (answer,) = self.run(["status"])
        return {key: int(value) for key, value in (part.split("=") for part in answer.split()[1:])}

    def kill(self) -> None:
        """kill -9: whatever the device was doing stops there."""
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            assert self.process.stdin
            self.process.stdin.close()
            self.process.wait(timeout=30)

    @property
    def total_generated(self) -> int:
        return sum(self.generated.values())
