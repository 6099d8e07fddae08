"""Fault injection for drills (the /internal/faults routes, off unless
NOCTIS_INTERNAL_ROUTES is set): database or model latency or errors, for a while.

Faults act where the real ones would be felt: a database fault at the start of every
request transaction (it holds the connection while it waits, and its error is a
database fault: 503 + Retry-After, counted by the circuit breaker), a model fault at
every inference. The registry is per worker process, like the state it disturbs: with
several workers, inject into each (or run the drill against one).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Literal

Target = Literal["database", "model"]
Kind = Literal["latency", "error"]


class InjectedFault(Exception):
    """An error a drill asked for; db.database_fault counts a database one as such."""

    def __init__(self, target: Target) -> None:
        super().__init__(f"injected {target} fault")
        self.target = target


@dataclass(frozen=True)
class Fault:
    target: Target
    kind: Kind
    latency_ms: int
    until: float  # time.monotonic()


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def add(self, target: Target, kind: Kind, seconds: float, latency_ms: int = 0) -> None:
        self._faults.append(Fault(target, kind, latency_ms, time.monotonic() + seconds))

    def active(self) -> list[Fault]:
        now = time.monotonic()
        self._faults = [f for f in self._faults if f.until > now]
        return list(self._faults)

    def clear(self) -> None:
        self._faults = []

    async def apply(self, target: Target) -> None:
        if not self._faults:  # the normal case costs one check
            return
        for fault in self.active():
            if fault.target != target:
                continue
            if fault.kind == "latency":
                await asyncio.sleep(fault.latency_ms / 1000)
            else:
                raise InjectedFault(target)


INJECTOR = FaultInjector()  # one per worker process
