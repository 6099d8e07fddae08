"""Fleet soak: the firmware's own code (noctis-device processes) against the real server
on PostgreSQL at its default settings, through days of simulated time.

Ten devices; a 30-hour outage (the first upload after it is larger than the server
takes: the device must split); a 10-day outage on a small queue that fills and drops
its oldest data; power cuts that tear flash writes and kill -9 at random points; one
NVS loss; the server killed and restarted; the database killed and restarted.
Per device: lost = 0, duplicates = 0, every dropped epoch declared and counted, the
final watermark at the last seq but those still waiting for their edge stage (the
model's lookahead); and in the database every seq of 0..ack_seq is stored exactly once
or recorded as a gap.
"""

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select

from device_sim.__main__ import night_codes
from device_sim.firmware import FirmwareDevice, build_firmware
from device_sim.fleet import DevicePlan, Fleet, tally
from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from sync_server.db import engine_for_job, sync_gaps
from tests.conftest import PASSWORD, login, register_device
from tests.factories import edge_lookahead, stored_seqs
from tests.postgres import PostgresServer
from tests.processes import ServerProcess

DAY = 2880  # epochs
LOOKAHEAD = edge_lookahead()  # the devices run the bundled edge model's, as the firmware ships
SERVER_RESTART_AT, DATABASE_DOWN = 1500, (2600, 2700)


def plans() -> list[DevicePlan]:
    rng = random.Random(11)
    fleet = [
        # 10 days offline on a queue of 22 blocks (about two days): the ring drops its oldest.
        DevicePlan(11 * DAY, outages=[(DAY // 2, DAY // 2 + 10 * DAY)], reboots=[DAY, 6 * DAY], sectors=24),
        # 30 hours offline: 3,600 epochs wait, more than the server's 2,880 per request.
        DevicePlan(2 * DAY, outages=[(300, 300 + 30 * 120)], reboots=[200, 4000]),
        # Loses its NVS once its queue is empty: it must start a new seq space.
        DevicePlan(2 * DAY, outages=[(100, 400)], reboots=[1000], nvs_loss=3000),
    ]
    for _ in range(7):
        start = rng.randrange(0, DAY)
        reboots = sorted(rng.randrange(1, 2 * DAY) for _ in range(3))
        fleet.append(DevicePlan(2 * DAY, outages=[(start, start + rng.randrange(10, 600))], reboots=reboots))
    return fleet


def gaps_of(url: str, device_id: str) -> list[tuple[int, int, str]]:
    async def read() -> list[tuple[int, int, str]]:
        async with engine_for_job(url) as engine, engine.connect() as conn:
            query = select(sync_gaps.c.first_seq, sync_gaps.c.last_seq, sync_gaps.c.reason).where(
                sync_gaps.c.device_id == uuid.UUID(device_id)
            )
            return [tuple(row) for row in await conn.execute(query)]

    return asyncio.run(read())


def test_ten_firmware_devices_through_outages_power_cuts_and_server_faults(tmp_path):
    build_firmware()
    with PostgresServer() as pg:
        migrate.upgrade(pg.url)
        asyncio.run(bootstrap_tenant(pg.url, "fleet", "fleet@example.com", PASSWORD))
        server = ServerProcess(pg.url, str(tmp_path / "server"))  # default settings
        with httpx.Client(base_url=server.url, timeout=30) as client:
            user = login(client, "fleet@example.com")
            fleet_plans = plans()
            devices = []
            for i in range(len(fleet_plans)):
                registered = register_device(client, user, f"soak-{i}")
                devices.append(
                    FirmwareDevice(tmp_path / f"device-{i}", server.url, registered.id, registered.secret,
                                   sectors=fleet_plans[i].sectors, seed=i + 1)
                )  # fmt: skip
            nights = [night_codes(500 + i, 24.0) for i in range(4)]
            start = datetime.now(UTC) - timedelta(days=12)
            fleet = Fleet(devices, fleet_plans, int(start.timestamp()), seed=5)
            last = max(p.epochs for p in fleet_plans)
            try:
                for index in range(last):
                    if index == SERVER_RESTART_AT:
                        server.kill()
                        server = ServerProcess(pg.url, str(tmp_path / "server"), port=server.port)
                    if index == DATABASE_DOWN[0]:
                        pg.stop()
                    if index == DATABASE_DOWN[1]:
                        pg.start()
                    fleet.step(index, nights, sync_every=10)
                assert fleet.drain(last), "a device still holds epochs after the drain"
                result = tally(client, user, devices)
            finally:
                fleet.stop()
                server.kill()

        print(result.line())
        assert fleet.restarts >= 20  # the power cuts really happened
        assert result.lost == 0 and result.duplicates == 0, result.rows
        for device, row in zip(devices, result.rows):
            # All made is on the server but the newest, still waiting for their stage.
            assert row["ack_seq"] + 1 + row["held"] == device.total_generated, row
            assert row["held"] <= LOOKAHEAD, row
            stored = stored_seqs(pg.url, device.id)
            assert len(stored) == len(set(stored)), "a seq stored twice"
            gone = gaps_of(pg.url, device.id)
            covered = set(stored)
            for first, last_seq, _ in gone:
                span = set(range(first, last_seq + 1))
                assert not span & covered, "a seq both stored and declared gone"
                covered |= span
            assert covered == set(range(row["ack_seq"] + 1)), "a seq neither stored nor declared"
        # The small queue dropped its oldest blocks; the drops reached the server as gaps.
        dropped = result.rows[0]["health"]["dropped_epochs"]
        assert dropped > 0 and result.rows[0]["declared_gaps"] >= dropped
        assert {reason for *_, reason in gaps_of(pg.url, devices[0].id)} >= {"queue_full"}
        assert len(devices[2].generated) == 2  # the NVS loss began a second incarnation
        assert sum(r["declared_gaps"] for r in result.rows[1:]) == 0  # nobody else lost data to declare
