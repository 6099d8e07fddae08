"""One simulated device: sensor epochs in, flash queue, sync with backoff, outages."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import numpy as np

from device_sim.queue import FlashQueue
from noctis_contract.blocks import SECTOR_BYTES
from noctis_contract.features import EPOCH_SECONDS

MAX_BODY = 16 * SECTOR_BYTES  # as the firmware's SyncConfig
BASE_DELAY_S, MAX_DELAY_S = 2.0, 900.0


class LinkDown(Exception):
    """The request never reached the server (Wi-Fi down, DNS, connection refused)."""


class ResponseLost(Exception):
    """The server got the request, but its answer never came back."""


@dataclass
class Faults:
    """Scripted trouble: outage windows (in epochs) and a chance to lose each answer."""

    outages: list[tuple[int, int]] = field(default_factory=list)
    lost_response_rate: float = 0.0

    def link_down(self, epoch_index: int) -> bool:
        return any(start <= epoch_index < end for start, end in self.outages)


@dataclass
class Stats:
    generated: int = 0
    uploads: int = 0
    failures: int = 0
    lost_responses: int = 0
    acked_seq: int = -1


class Device:
    def __init__(
        self,
        device_id: str,
        secret: str,
        client: httpx.Client,
        faults: Faults,
        rng: random.Random,
        sync_every: int = 1,
        model_version: int = 1,
        queue: FlashQueue | None = None,
    ) -> None:
        self.id, self.secret = device_id, secret
        self.client, self.faults, self.rng = client, faults, rng
        self.sync_every = sync_every
        self.model_version = model_version
        self.queue = queue or FlashQueue()
        self.stats = Stats()
        self.token: str | None = None
        self.failures = 0
        self.not_before = 0.0  # simulated seconds
        self.next_seq = 0

    # -- the sensor side --------------------------------------------------------
    def record(self, start: int, codes: np.ndarray, stage: int | None) -> None:
        self.queue.append(self.next_seq, start, codes, stage, self.model_version)
        self.next_seq += 1
        self.stats.generated += 1

    # -- the sync side ----------------------------------------------------------
    def _post(self, body: bytes, epoch_index: int) -> httpx.Response:
        if self.faults.link_down(epoch_index):
            raise LinkDown
        if self.token is None:
            answer = self.client.post("/v1/auth/device-token", json={"device_id": self.id, "secret": self.secret})
            answer.raise_for_status()
            self.token = answer.json()["access_token"]
        response = self.client.post(
            "/v1/epochs:ingest",
            content=body,
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/octet-stream"},
        )
        if self.rng.random() < self.faults.lost_response_rate:
            raise ResponseLost
        return response

    def _backoff(self, now: float, retry_after: float = 0.0) -> None:
        ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** min(self.failures, 20))
        self.not_before = now + max(self.rng.uniform(0, ceiling), retry_after)
        self.failures += 1
        self.stats.failures += 1

    def sync(self, now: float, epoch_index: int, drain: bool = False) -> None:
        """One sync opportunity: upload batches oldest-first until done or failed."""
        if now < self.not_before or (not drain and epoch_index % self.sync_every):
            return
        while self.queue.pending:
            body, last_seq = self.queue.read_batch(MAX_BODY)
            self.stats.uploads += 1
            try:
                response = self._post(body, epoch_index)
            except (LinkDown, httpx.TransportError):
                self._backoff(now)
                return
            except ResponseLost:
                self.stats.lost_responses += 1
                self._backoff(now)
                return
            if response.status_code == 401:
                self.token = None
                return
            if response.status_code != 200:
                self._backoff(now, float(response.headers.get("retry-after", 0)))
                return
            ack = response.json()
            self.failures = 0
            self.stats.acked_seq = ack["ack_seq"]
            # Erase only what the server says is stored.
            self.queue.acknowledge(ack["ack_seq"])
            if ack["ack_seq"] < last_seq:
                return  # a gap the server is missing: retry at the next opportunity


def night_codes(seed: int, hours: float) -> tuple[np.ndarray, np.ndarray]:
    """Codes and true stages of one simulated night (model_export's simulator)."""
    from model_export.simulator import simulate_night
    from noctis_contract.features import quantize

    night = simulate_night(seed, hours=hours)
    return quantize(night.features), night.stages


def run_fleet(
    devices: list[Device], nights: list[np.ndarray], first_start: int, on_epoch: Callable[[int], None] | None = None
) -> None:
    """Every device records its night epoch by epoch in simulated time, syncing as it goes;
    then the outages end and every device drains."""
    length = max(len(n) for n in nights)
    for index in range(length):
        now = float(index * EPOCH_SECONDS)
        for device, codes in zip(devices, nights):
            if index < len(codes):
                device.record(first_start + EPOCH_SECONDS * index, codes[index], None)
            device.sync(now, index)
        if on_epoch:
            on_epoch(index)
    # Morning: the links come back; each device drains what it still holds.
    after = length + max((end for d in devices for _, end in d.faults.outages), default=0)
    for device in devices:
        device.not_before = 0.0
        for attempt in range(50):
            if not device.queue.pending:
                break
            device.sync(float((after + attempt) * EPOCH_SECONDS), after + attempt, drain=True)
            device.not_before = 0.0
