"""noctis-simulate: drive a fleet of simulated devices against a running server.

    python -m device_sim --server http://127.0.0.1:8000 --email me@example.com --password … \\
        --devices 20 --hours 8 --outages 2 --lost-responses 0.05

Registers the devices with the owner's credentials, streams one simulated night per
device (with outages and lost answers), drains, and then checks with the server that
every generated epoch is acknowledged. Exits non-zero if any is missing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx
from rich.progress import Progress

from device_sim.device import Device, Faults, night_codes, run_fleet
from noctis_contract.features import EPOCH_SECONDS


def random_outages(rng: random.Random, epochs: int, count: int) -> list[tuple[int, int]]:
    outages = []
    for _ in range(count):
        start = rng.randrange(0, max(1, epochs - 10))
        outages.append((start, start + rng.randrange(5, max(6, epochs // 4))))
    return outages


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m device_sim")
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--outages", type=int, default=2, help="outage windows per device")
    parser.add_argument("--lost-responses", type=float, default=0.05, help="share of answers lost on the way back")
    parser.add_argument("--sync-every", type=int, default=1, help="epochs between sync attempts")
    parser.add_argument("--speedup", type=float, default=0.0, help="real-time factor; 0 = as fast as possible")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    with httpx.Client(base_url=args.server, timeout=30) as client:
        token = client.post("/v1/auth/token", json={"email": args.email, "password": args.password})
        if token.status_code != 200:
            sys.exit(f"login failed: {token.status_code} {token.text}")
        user = {"authorization": f"Bearer {token.json()['access_token']}"}
        nights = [night_codes(args.seed * 1000 + i, args.hours)[0] for i in range(args.devices)]
        devices = []
        for i in range(args.devices):
            created = client.post("/v1/devices", json={"name": f"simulated-{args.seed}-{i}"}, headers=user)
            created.raise_for_status()
            body = created.json()
            faults = Faults(random_outages(rng, len(nights[i]), args.outages), args.lost_responses)
            devices.append(
                Device(
                    body["device"]["id"],
                    body["secret"],
                    client,
                    faults,
                    random.Random(rng.random()),
                    sync_every=args.sync_every,
                )
            )
        first_start = int((datetime.now(UTC) - timedelta(hours=args.hours + 1)).timestamp())
        first_start -= first_start % EPOCH_SECONDS
        with Progress() as progress:
            task = progress.add_task(f"{args.devices} devices, one night each", total=max(map(len, nights)))

            def tick(_: int) -> None:
                progress.advance(task)
                if args.speedup:
                    time.sleep(EPOCH_SECONDS / args.speedup)

            run_fleet(devices, nights, first_start, on_epoch=tick)

        missing = 0
        for device in devices:
            ack = client.get(f"/v1/devices/{device.id}", headers=user).json()["ack_seq"]
            missing += device.stats.generated - (ack + 1)
            print(
                f"{device.id}  generated={device.stats.generated} server_ack_seq={ack} "
                f"uploads={device.stats.uploads} failures={device.stats.failures} "
                f"lost_answers={device.stats.lost_responses} still_in_flash={device.queue.pending}"
            )
        print(f"epochs generated={sum(d.stats.generated for d in devices)} missing_on_server={missing}")
        if missing:
            sys.exit(1)


if __name__ == "__main__":
    main()
