"""What a worker keeps from the database (sync_server.changes): a token's principal and
a stored night's answer cost no round trip when asked again, and end as soon as any
writer (another server, the CLI, a job) changes their rows, or the worker stops
hearing of changes. PostgreSQL only: SQLite announces nothing and nothing is kept."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event

from sync_server import changes as changes_module
from sync_server.changes import LISTENER_NAME, Changes, Kept, Token
from sync_server.faults import INJECTOR
from tests.factories import NIGHT_START, batch_json, run_sql


@pytest.fixture
def postgresql(backend: str) -> None:
    if backend == "sqlite":
        pytest.skip("SQLite announces no changes: the server keeps nothing there")


@contextmanager
def statements_counted(live_server) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """The SQL the server sends while the block runs."""
    engine = live_server.server.config.app.state.engine.sync_engine
    sent: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def eventually(condition: Callable[[], bool], seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def kept(live_server, ask: Callable[[], httpx.Response]) -> httpx.Response:  # type: ignore[no-untyped-def]
    """Ask until the answer comes without a database round trip: what it read is kept."""
    deadline = time.monotonic() + 2
    while True:
        with statements_counted(live_server) as sent:
            answer = ask()
        if not sent or time.monotonic() > deadline:
            assert not sent, f"still read from the database: {sent}"
            return answer


def _ended_night(client: httpx.Client, tenant, device) -> dict:  # type: ignore[no-untyped-def]
    client.post("/v1/epochs:ingest", json=batch_json(range(60)), headers=device.headers)
    ended = NIGHT_START + timedelta(hours=1)  # the 60 epochs are the night's first 30 minutes
    window = {"device_id": device.id, "started_at": NIGHT_START.isoformat(), "ended_at": ended.isoformat()}
    return client.post("/v1/recordings", headers=tenant.headers, json=window).json()  # type: ignore[no-any-return]


def _listening(live_server) -> bool:  # type: ignore[no-untyped-def]
    return live_server.server.config.app.state.principals.changes.listening  # type: ignore[no-any-return]


def test_a_night_asked_again_costs_no_database_round_trip(postgresql, client, live_server, tenant, device):
    recording = _ended_night(client, tenant, device)
    assert eventually(lambda: _listening(live_server))
    ask = {"recording_id": recording["id"]}
    first = client.post("/v1/predict", headers=tenant.headers, json=ask)
    # Neither the principal nor the night is read again (kept at the first ask, or at a
    # later one if a change was announced while the first read).
    again = kept(live_server, lambda: client.post("/v1/predict", headers=tenant.headers, json=ask))
    assert again.status_code == 200 and again.content == first.content


def test_a_kept_night_is_sent_compressed_to_clients_that_accept_gzip(postgresql, client, live_server, tenant, device):
    ask = {"recording_id": _ended_night(client, tenant, device)["id"]}
    kept(live_server, lambda: client.post("/v1/predict", headers=tenant.headers, json=ask))

    def sent(accept_encoding: str) -> tuple[str | None, bytes]:
        headers = {**tenant.headers, "accept-encoding": accept_encoding}
        with client.stream("POST", "/v1/predict", headers=headers, json=ask) as answer:
            assert answer.status_code == 200 and answer.headers["vary"] == "accept-encoding"
            return answer.headers.get("content-encoding"), b"".join(answer.iter_raw())

    plain = sent("identity")
    assert plain[0] is None and json.loads(plain[1])["epochs"]
    for accepted in ("gzip", "br, gzip;q=0.5", "*"):
        encoding, body = sent(accepted)
        assert encoding == "gzip" and gzip.decompress(body) == plain[1] and len(body) < len(plain[1]) / 3, accepted
    for refused in ("gzip;q=0", "br", "*;q=0", ""):
        assert sent(refused) == plain, refused


def test_a_change_by_another_writer_ends_what_was_kept(postgresql, client, live_server, database_url, tenant, device):
    recording = _ended_night(client, tenant, device)
    ask = {"recording_id": recording["id"]}
    night = kept(live_server, lambda: client.post("/v1/predict", headers=tenant.headers, json=ask))
    assert len(night.json()["epochs"]) == 60
    # Another server shortens the night: the next answers follow within moments.
    run_sql(
        database_url,
        "UPDATE recordings SET ended_at = started_at + interval '5 minutes', window_end = started_at + interval "
        "'5 minutes' WHERE id = :id",
        id=recording["id"],
    )

    def epochs() -> int:
        return len(client.post("/v1/predict", headers=tenant.headers, json=ask).json()["epochs"])

    assert eventually(lambda: epochs() == 10)
    # The CLI disables the owner: the owner's token stops working as soon as it is heard.
    kept(live_server, lambda: client.post("/v1/predict", headers=tenant.headers, json=ask))
    run_sql(database_url, "UPDATE users SET disabled_at = now() WHERE tenant_id = :tenant", tenant=tenant.id)
    assert eventually(lambda: client.post("/v1/predict", headers=tenant.headers, json=ask).status_code == 401)


def test_what_was_kept_before_the_listener_dropped_is_not_used(
    postgresql, client, live_server, database_url, tenant, device
):
    ask = {"recording_id": _ended_night(client, tenant, device)["id"]}
    assert eventually(lambda: _listening(live_server))
    kept(live_server, lambda: client.post("/v1/predict", headers=tenant.headers, json=ask))  # the owner is kept
    listeners = "SELECT pid FROM pg_stat_activity WHERE application_name = :name"
    run_sql(database_url, f"SELECT pg_terminate_backend(pid) FROM ({listeners}) AS l", name=LISTENER_NAME)
    # Disabled while no one listens: this announcement is lost to the worker ...
    run_sql(database_url, "UPDATE users SET disabled_at = now() WHERE tenant_id = :tenant", tenant=tenant.id)
    assert eventually(lambda: len(run_sql(database_url, listeners, name=LISTENER_NAME)) == 1, seconds=5)
    assert eventually(lambda: _listening(live_server))
    # ... and yet the owner kept before is not used: the database is asked again.
    assert client.post("/v1/predict", headers=tenant.headers, json=ask).status_code == 401


def test_kept_values_need_an_unbroken_watch_and_stay_within_their_budget():
    changes = Changes()
    kept: Kept[bytes] = Kept(changes, max_cost=10, cost=len)
    kept.put("a", b"12345", ["row-a"], changes.token())
    assert kept.get("a") is None  # not listening: nothing is kept
    changes._start(listening=True)
    since = changes.token()
    changes.announced("row-z")  # any announcement while reading: maybe about these rows
    kept.put("a", b"12345", ["row-a"], since)
    assert kept.get("a") is None
    kept.put("a", b"12345", ["row-a"], changes.token())
    kept.put("b", b"123456", ["row-b"], changes.token())  # over budget: the oldest goes
    assert (kept.get("a"), kept.get("b")) == (None, b"123456")
    changes.announced("row-z")
    assert kept.get("b") == b"123456"  # another row's change leaves it
    changes.announced("row-b")
    assert kept.get("b") is None


def test_a_late_answer_pauses_what_was_kept_and_a_lost_one_would_end_it(
    postgresql, client, live_server, tenant, device, monkeypatch
):
    """The listening connection answers its health check late (here PostgreSQL sleeps on
    it, as a database short of CPU would be slow): nothing kept is used meanwhile, and
    once it answers, what was kept serves again with no round trip and no new watch."""
    ask = {"recording_id": _ended_night(client, tenant, device)["id"]}
    assert eventually(lambda: _listening(live_server))
    first = kept(live_server, lambda: client.post("/v1/predict", headers=tenant.headers, json=ask))
    changes = live_server.server.config.app.state.principals.changes
    session = changes.token()[0]
    monkeypatch.setattr(changes_module, "PING", "SELECT pg_sleep(3)")  # from the next health check on
    assert eventually(lambda: not _listening(live_server), seconds=6)
    monkeypatch.setattr(changes_module, "PING", "SELECT 1")
    with statements_counted(live_server) as sent:
        paused = client.post("/v1/predict", headers=tenant.headers, json=ask)
    assert paused.content == first.content and sent  # read from the database
    assert eventually(lambda: _listening(live_server), seconds=5)
    assert changes.token()[0] == session  # the same watch: nothing was missed
    with statements_counted(live_server) as sent:
        again = client.post("/v1/predict", headers=tenant.headers, json=ask)
    assert again.content == first.content and not sent


def test_a_value_under_way_is_awaited_not_made_again():
    async def scenario() -> None:
        changes = Changes()
        kept: Kept[str] = Kept(changes, max_cost=10)
        changes._start(listening=True)
        made: list[str] = []
        release = asyncio.Event()

        async def make(since: Token | None) -> str:
            made.append("made")
            await release.wait()
            kept.put("night", f"value {len(made)}", ["row"], since)
            return f"value {len(made)}"

        first = asyncio.ensure_future(kept.once("night", make))
        gone = asyncio.ensure_future(kept.once("night", make))
        joined = asyncio.ensure_future(kept.once("night", make))
        await asyncio.sleep(0)
        gone.cancel()  # a client that went away ends nothing for the others
        changes.announced("other-row")  # after this, what is under way may be stale ...
        later = asyncio.ensure_future(kept.once("night", make))  # ... so it is made anew
        await asyncio.sleep(0)
        release.set()
        assert await first == await joined == "value 2" and await later == "value 2"
        assert made == ["made", "made"] and gone.cancelled()
        assert kept.get("night") == "value 2"  # the one begun after the announcement was kept
        changes._start(listening=False)
        assert await kept.once("night", make) == "value 3"  # not listening: made every time

    asyncio.run(scenario())


def test_a_cold_night_asked_by_many_at_once_is_read_and_scored_once(postgresql, client, live_server, tenant, device):
    ask = {"recording_id": _ended_night(client, tenant, device)["id"]}
    assert eventually(lambda: _listening(live_server))
    changes = live_server.server.config.app.state.principals.changes

    def quiet() -> bool:  # the recording's and the device's announcements are heard
        before = changes.token()
        time.sleep(0.2)
        return changes.token() == before

    # (Any announcement while a night is read makes the next ask read it anew.)
    assert eventually(quiet)
    INJECTOR.add("model", "latency", seconds=10, latency_ms=500)  # all eight arrive while it is scored
    try:
        with statements_counted(live_server) as sent, ThreadPoolExecutor(8) as pool:
            asks = [pool.submit(client.post, "/v1/predict", headers=tenant.headers, json=ask) for _ in range(8)]
            answers = [a.result() for a in asks]
    finally:
        INJECTOR.clear()
    assert {a.status_code for a in answers} == {200} and len({a.content for a in answers}) == 1
    assert len([s for s in sent if "FROM epochs" in s]) == 1
