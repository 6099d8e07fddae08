"""A fleet of host-firmware devices living through days in simulated time."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from device_sim.firmware import DeviceDied, FirmwareDevice
from noctis_contract.features import EPOCH_SECONDS

EPOCH_MS = EPOCH_SECONDS * 1000


@dataclass
class DevicePlan:
    """What happens to one device, in epoch indices of the shared simulated clock."""

    epochs: int
    outages: list[tuple[int, int]] = field(default_factory=list)  # [start, end): Wi-Fi down
    reboots: list[int] = field(default_factory=list)  # power cut (a torn flash write) or kill -9
    nvs_loss: int | None = None  # after a full sync: NVS erased, the device restarts
    sectors: int = 2048  # queue partition size; small ones fill and drop their oldest data

    def link_up(self, index: int) -> bool:
        return not any(start <= index < end for start, end in self.outages)


def random_plan(rng: random.Random, epochs: int, outages: int, max_outage_epochs: int, reboots: int) -> DevicePlan:
    windows = []
    for _ in range(outages):
        start = rng.randrange(0, max(1, epochs - 10))
        windows.append((start, start + rng.randrange(5, max(6, max_outage_epochs))))
    return DevicePlan(epochs, windows, sorted(rng.randrange(1, max(2, epochs)) for _ in range(reboots)))


class Fleet:
    def __init__(self, devices: list[FirmwareDevice], plans: list[DevicePlan], start_unix: int, seed: int = 1) -> None:
        self.devices, self.plans, self.start_unix = devices, plans, start_unix
        self.rng = random.Random(seed)
        self.link: list[bool] = [True] * len(devices)
        self.restarts = 0

    def _boot(self, device: FirmwareDevice, index: int, booted_ms: int) -> None:
        device.start(booted_ms)
        plan = self.plans[self.devices.index(device)]
        up = plan.link_up(index)
        # The clock is set at boot (NTP when the link is up, else the RTC kept by the supercap).
        device.run([f"clock {self.start_unix + booted_ms // 1000}", f"link {'up' if up else 'down'}"])

    def _run(self, device: FirmwareDevice, lines: list[str], index: int, now_ms: int) -> list[str]:
        try:
            return device.run(lines)
        except DeviceDied:
            # It died mid-epoch (a torn write): it boots again where that epoch began.
            self.restarts += 1
            self._boot(device, index, now_ms - EPOCH_MS)
            return []

    def step(self, index: int, nights: list[np.ndarray], sync_every: int) -> None:
        now_ms = (index + 1) * EPOCH_MS  # the epoch `index` ends now
        for n, (device, plan) in enumerate(zip(self.devices, self.plans)):
            if index >= plan.epochs:
                continue
            if device.process is None:
                self._boot(device, index, now_ms - EPOCH_MS)
            lines: list[str] = []
            up = plan.link_up(index)
            if up != self.link[n]:
                lines.append(f"link {'up' if up else 'down'}")
                self.link[n] = up
            if index in plan.reboots:
                if self.rng.random() < 0.5:
                    lines.append(f"cut {self.rng.randrange(1, 40)}")  # dies at a torn flash write soon
                else:
                    device.kill()  # kill -9 wherever it was
                    self.restarts += 1
                    self._boot(device, index, now_ms - EPOCH_MS)
            if plan.nvs_loss == index:
                # A reflash: power off and on (the epochs waiting for a stage become
                # ready), a sync, and if nothing in flash says where seqs were, NVS lost.
                device.kill()
                self._boot(device, index, now_ms - EPOCH_MS)
                if device.sync(now_ms)[1] == 0 and device.status()["pending"] == 0:
                    device.kill()
                    device.nvs.unlink(missing_ok=True)
                    self._boot(device, index, now_ms - EPOCH_MS)
                else:
                    plan.nvs_loss += 1  # try again after the next epoch
            night = nights[n % len(nights)]
            lines += device.record(now_ms, night[index % len(night)])
            if up and index % sync_every == 0:
                lines += [f"time {now_ms - device.boot_ms}", "sync"]
            self._run(device, lines, index, now_ms)

    def drain(self, after_index: int, rounds: int = 400) -> bool:
        """Morning after the last outage: every link up, time moves on until each device
        has uploaded all it can (the newest epochs wait for their stage: ``held``)."""
        now_ms = (after_index + 1) * EPOCH_MS
        pending = [1] * len(self.devices)
        for device in self.devices:
            self._run(device, ["link up"], after_index, now_ms)
        for _ in range(rounds):
            now_ms += 60_000
            for n, device in enumerate(self.devices):
                if pending[n]:
                    try:
                        pending[n] = device.sync(now_ms)[1]
                    except DeviceDied:
                        self._boot(device, after_index, now_ms)
            if not any(pending):
                return True
        return False

    def stop(self) -> None:
        for device in self.devices:
            device.stop()


@dataclass
class Tally:
    devices: int = 0
    generated: int = 0
    stored: int = 0
    lost: int = 0
    duplicates: int = 0
    declared_gaps: int = 0
    held: int = 0  # still on the devices, waiting for their edge stage
    rows: list[dict[str, Any]] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"devices={self.devices} generated={self.generated} stored={self.stored} lost={self.lost} "
            f"duplicates={self.duplicates} declared_gaps={self.declared_gaps} held_on_devices={self.held}"
        )


def tally(client: httpx.Client, user_headers: dict[str, str], devices: list[FirmwareDevice]) -> Tally:
    """Compare what each device made with what the server says it holds.

    The server's seq line for a device is 0..ack_seq, every seq stored or declared gone;
    so stored = ack_seq + 1 - declared. An epoch made and neither on that line nor still
    held by the device (its newest, waiting for their stage) is lost; a line longer than
    what was made would hold something twice."""
    result = Tally(devices=len(devices))
    for device in devices:
        shown = client.get(f"/v1/devices/{device.id}", headers=user_headers).json()
        line, declared = shown["ack_seq"] + 1, shown["declared_gap_epochs"]
        made = device.total_generated
        row = {
            "device": device.id,
            "generated": made,
            "stored": line - declared,
            "declared_gaps": declared,
            "held": device.held,
            "lost": max(0, made - line - device.held),
            "duplicates": max(0, line - made),
            "ack_seq": shown["ack_seq"],
            "incarnations": len(device.generated),
            "health": shown["health"],
        }
        result.rows.append(row)
        result.generated += made
        result.stored += row["stored"]
        result.declared_gaps += declared
        result.held += device.held
        result.lost += row["lost"]
        result.duplicates += row["duplicates"]
    return result
