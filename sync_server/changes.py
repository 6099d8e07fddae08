"""What is kept from the database, and for exactly as long as it is unchanged.

Migration 0010 has PostgreSQL announce the id of every changed user, device and
recording on the channel `noctis_changes` as the change commits (a device's new epochs
change its row); 0011 announces `model_activations` with every promotion and rollback,
which workers follow at once (`Changes.heard`). Each worker listens on a connection of its own (`Changes.follow`) and
counts the announcements per id. `Kept` holds values computed from rows (a token's
principal, a stored night's answer) with the counts of the ids they were read from,
and gives one back only while none of those ids has been announced since: a hit needs
no round trip, and a change made by any worker, replica, CLI or job is seen as soon as
PostgreSQL delivers its announcement (within milliseconds of the commit).

A worker that is not listening keeps nothing: it cannot know what it misses. Losing
the connection ends every kept value; a new one is kept only from the moment the worker
listens again. A connection that answers late (asked every two seconds, it has not
answered within two) is not lost, but nothing kept is used until it answers: then every
announcement it held has been heard. One that does not answer for 30 s is taken for
lost. On SQLite nothing is announced, so nothing is kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

import asyncpg
from sqlalchemy import make_url

log = logging.getLogger(__name__)

CHANNEL = "noctis_changes"
LISTENER_NAME = "noctis-changes"  # the listening connections' application_name in pg_stat_activity
_STRIPES = 8192  # counts per id hash: a collision only ends a kept value early
_HEALTH_SECONDS = 2.0  # how often the listening connection is asked whether it is alive, and how late it may answer
_DEAD_SECONDS = 30.0  # how long it may take to answer before it is taken for dead (and listened to anew)
PING = "SELECT 1"

Token = tuple[int, int]  # (listening session, announcements received): see Changes.token
Stamp = tuple[int, tuple[int, ...]]  # (listening session, counts of some ids): see Changes.stamp


class Changes:
    """The announcements this worker has received, while it listens."""

    def __init__(self) -> None:
        self.listening = False
        self._session = 0  # a new one each time listening starts or stops
        self._received = 0
        self._counts = [0] * _STRIPES
        self._heard: dict[str, asyncio.Event] = {}

    def token(self) -> Token | None:
        """Take before reading rows to keep: equal later only if nothing was announced in
        between. None while not listening."""
        return (self._session, self._received) if self.listening else None

    def stamp(self, ids: Sequence[str]) -> Stamp:
        """Where the announcements of these ids stand now."""
        return self._session, tuple(self._counts[hash(row_id) % _STRIPES] for row_id in ids)

    def unchanged(self, ids: Sequence[str], stamp: Stamp) -> bool:
        """No id of ids announced since stamp, on the same watch (a watch begun anew
        after a lost connection is another session, so its stamps differ). Whether kept
        values may be used at this moment is Changes.listening, checked by Kept.get."""
        return self.stamp(ids) == stamp

    def announced(self, row_id: str) -> None:
        self._counts[hash(row_id) % _STRIPES] += 1
        self._received += 1
        if row_id in self._heard:
            self._heard[row_id].set()

    def heard(self, name: str) -> asyncio.Event:
        """An event set when `name` is announced, and whenever listening starts (what
        was announced before could not be heard): whoever waits on it clears it, then
        looks at the database."""
        return self._heard.setdefault(name, asyncio.Event())

    async def follow(self, database_url: str) -> None:
        """Listen until cancelled, again a second after the connection fails."""
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                await self._listen(dsn)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("not listening for changes (nothing is kept meanwhile): %s", exc)
            except Exception:
                log.exception("not listening for changes (nothing is kept meanwhile)")
            await asyncio.sleep(1.0)

    async def _listen(self, dsn: str) -> None:
        conn = await asyncpg.connect(dsn, timeout=_HEALTH_SECONDS, server_settings={"application_name": LISTENER_NAME})
        try:
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _: lost.set())
            await conn.add_listener(CHANNEL, lambda _conn, _pid, _channel, payload: self.announced(payload))
            self._start(listening=True)
            while not lost.is_set():
                # A connection can die without a word (a dropped route): ask it. A late
                # answer (a database or host short of CPU) only pauses what is kept: the
                # connection still holds every announcement, in order, and all are heard
                # once it answers. Taking it for dead would make every worker read every
                # night again just when the database is slowest.
                ping = asyncio.ensure_future(conn.fetchval(PING, timeout=_DEAD_SECONDS))
                try:
                    done, _ = await asyncio.wait({ping}, timeout=_HEALTH_SECONDS)
                    if not done:
                        self.listening = False  # nothing kept is used ...
                        await ping  # ... until it answers; no answer at all ends the watch
                        self.listening = True
                    ping.result()
                finally:
                    ping.cancel()
                try:
                    await asyncio.wait_for(lost.wait(), _HEALTH_SECONDS)
                except TimeoutError:
                    pass
            raise asyncpg.InterfaceError("the database closed the connection")
        finally:
            self._start(listening=False)
            conn.terminate()

    def _start(self, listening: bool) -> None:
        self.listening = listening
        self._session += 1
        if listening:
            for event in self._heard.values():
                event.set()


V = TypeVar("V")


class Kept(Generic[V]):
    """Values computed from rows, each given back while the rows' ids are unannounced;
    the least recently used go first beyond max_cost (cost: 1 per value, or as given)."""

    def __init__(self, changes: Changes, max_cost: int, cost: Callable[[V], int] = lambda _: 1) -> None:
        self.changes = changes
        self.max_cost = max_cost
        self._cost = cost
        self._total = 0
        self._values: OrderedDict[Hashable, tuple[V, tuple[str, ...], Stamp]] = OrderedDict()
        self._making: dict[Hashable, tuple[Token, asyncio.Future[V]]] = {}

    def get(self, key: Hashable) -> V | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, ids, stamp = entry
        if not self.changes.listening:
            return None  # kept, but not to be used now; a watch lost meanwhile ends it below
        if not self.changes.unchanged(ids, stamp):
            self._drop(key)
            return None
        self._values.move_to_end(key)
        return value

    async def once(self, key: Hashable, make: Callable[[Token | None], Awaitable[V]]) -> V:
        """make(since)'s value, where since is Changes.token() as it starts (make puts
        what may be kept). Asked for the same key while one is under way, with nothing
        announced since it began, the one under way is awaited instead of made again: a
        night asked by many clients at once is read and scored once. A caller that goes
        away (a closed connection) does not end it for the others."""
        since = self.changes.token()
        if since is None:
            return await make(since)  # not listening: nothing is known to be unchanged
        making = self._making.get(key)
        if making is None or making[0] != since:
            making = self._making[key] = (since, asyncio.ensure_future(make(since)))
            making[1].add_done_callback(lambda done: self._made(key, done))
        return await asyncio.shield(making[1])

    def _made(self, key: Hashable, done: asyncio.Future[V]) -> None:
        if key in self._making and self._making[key][1] is done:
            del self._making[key]
        if not done.cancelled():
            done.exception()  # its error is its callers'; with none left, not "never retrieved"

    def put(self, key: Hashable, value: V, ids: Sequence[Hashable], since: Token | None) -> None:
        """Keep value, read from the rows of ids after Changes.token() gave since."""
        if since is None or self.changes.token() != since:
            return  # not listening, or something was announced meanwhile: maybe about these rows
        self._drop(key)
        row_ids = tuple(str(row_id) for row_id in ids)  # as announced: uuid::text
        self._values[key] = (value, row_ids, self.changes.stamp(row_ids))
        self._total += self._cost(value)
        while self._total > self.max_cost:
            self._drop(next(iter(self._values)))

    def _drop(self, key: Hashable) -> None:
        entry = self._values.pop(key, None)
        if entry is not None:
            self._total -= self._cost(entry[0])
