"""noctis-simulate: a fleet of real firmware processes against a running server.

    python -m device_sim --server http://127.0.0.1:8000 --email me@example.com --password … \\
        --devices 20 --hours 8 --outages 2 --reboots 1

Builds the host firmware if needed, registers the devices with the owner's
credentials, lets each one record a simulated night in simulated time (with Wi-Fi
outages and power cuts that tear a flash write), drains, and checks with the server
that every epoch made is stored exactly once or declared gone. The last line reads
`devices=… generated=… stored=… lost=… duplicates=… declared_gaps=…`; the exit status
is non-zero if anything was lost or duplicated.

    python -m device_sim provision --server https://noctis.example --email … --password … \
        --name bedroom --ca ca.pem --ssid … --wifi-password … > /dev/ttyUSB0

registers one device and prints the provisioning console's lines for it (Wi-Fi, server,
device id and secret, OTA key, CA; noctis/provisioning.h), to be sent to the board's
USB serial or a host device's stdin (prefixed with "provision "). The device secret is
in those lines only: the server keeps its hash.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.progress import Progress

from device_sim.firmware import FirmwareDevice, build_firmware
from device_sim.fleet import Fleet, random_plan, tally
from noctis_contract.features import EPOCH_SECONDS


def night_codes(seed: int, hours: float):  # type: ignore[no-untyped-def]
    """The feature codes of one simulated night (model_export's simulator)."""
    from model_export.simulator import simulate_night
    from noctis_contract.features import quantize

    return quantize(simulate_night(seed, hours=hours).features)


def provision_lines(
    server: str, device_id: str, secret: str, ota_key: str, ca_pem: str, ssid: str, wifi: str
) -> list[str]:
    """The console lines that provision one device (edge_firmware/include/noctis/provisioning.h)."""
    lines = [f"set ssid {ssid}", f"set wifi_pw {wifi}"] if ssid else []
    lines += [f"set server {server}", f"set device_id {device_id}", f"set secret {secret}", f"set ota_key {ota_key}"]
    if ca_pem:
        lines += ["ca-begin", *ca_pem.strip().splitlines(), "ca-end"]
    return [*lines, "check"]


def provision(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m device_sim provision")
    parser.add_argument("--server", required=True, help="the URL the device will use (https://…)")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--name", required=True, help="the device's name in the tenant")
    parser.add_argument("--ca", type=Path, help="PEM of the CA that signs the server's certificate")
    parser.add_argument("--ssid", default="")
    parser.add_argument("--wifi-password", default="")
    args = parser.parse_args(argv)
    ca_pem = args.ca.read_text() if args.ca else ""
    verify: str | bool = str(args.ca) if args.ca else True
    with httpx.Client(base_url=args.server, timeout=30, verify=verify) as client:
        token = client.post("/v1/auth/token", json={"email": args.email, "password": args.password})
        if token.status_code != 200:
            sys.exit(f"login failed: {token.status_code} {token.text}")
        user = {"authorization": f"Bearer {token.json()['access_token']}"}
        created = client.post("/v1/devices", json={"name": args.name}, headers=user)
        if created.status_code != 201:
            sys.exit(f"could not register the device: {created.status_code} {created.text}")
        body = created.json()
        key = client.get("/v1/ota/public-key", headers=user).json()["public_key"]
    for line in provision_lines(
        args.server, body["device"]["id"], body["secret"], key, ca_pem, args.ssid, args.wifi_password
    ):
        print(line)
    print(
        f"device {body['device']['id']} registered as {args.name!r}; its secret is only in these lines", file=sys.stderr
    )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["provision"]:
        provision(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="python -m device_sim")
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument("--outages", type=int, default=2, help="Wi-Fi outages per device")
    parser.add_argument("--outage-hours", type=float, default=2.0, help="longest outage")
    parser.add_argument("--reboots", type=int, default=1, help="power cuts per device (torn flash writes, kill -9)")
    parser.add_argument("--sync-every", type=int, default=1, help="epochs between uploads (the firmware: 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None, help="where the devices keep flash and NVS files")
    args = parser.parse_args(argv)

    build_firmware()
    rng = random.Random(args.seed)
    epochs = int(args.hours * 3600 / EPOCH_SECONDS)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="noctis-fleet-"))
    with httpx.Client(base_url=args.server, timeout=30) as client:
        token = client.post("/v1/auth/token", json={"email": args.email, "password": args.password})
        if token.status_code != 200:
            sys.exit(f"login failed: {token.status_code} {token.text}")
        user = {"authorization": f"Bearer {token.json()['access_token']}"}
        devices, plans = [], []
        for i in range(args.devices):
            created = client.post("/v1/devices", json={"name": f"simulated-{args.seed}-{i}"}, headers=user)
            created.raise_for_status()
            body = created.json()
            devices.append(
                FirmwareDevice(workdir / f"device-{i}", args.server, body["device"]["id"], body["secret"], seed=i + 1)
            )
            max_outage = int(args.outage_hours * 3600 / EPOCH_SECONDS)
            plans.append(random_plan(rng, epochs, args.outages, max_outage, args.reboots))
        nights = [night_codes(args.seed * 1000 + i, args.hours) for i in range(args.devices)]
        start = datetime.now(UTC) - timedelta(hours=args.hours + 3 * args.outage_hours + 1)
        fleet = Fleet(devices, plans, int(start.timestamp()), seed=args.seed)
        try:
            with Progress() as progress:
                task = progress.add_task(f"{args.devices} devices, {args.hours:g} h each", total=epochs)
                for index in range(epochs):
                    fleet.step(index, nights, args.sync_every)
                    progress.advance(task)
            drained = fleet.drain(epochs)
        finally:
            fleet.stop()
        result = tally(client, user, devices)
        for row in result.rows:
            print(
                f"{row['device']}  generated={row['generated']} stored={row['stored']} "
                f"declared_gaps={row['declared_gaps']} server_ack_seq={row['ack_seq']} "
                f"held={row['held']} incarnations={row['incarnations']}"
            )
        if not drained:
            print("some devices still hold epochs: the server kept refusing them")
        print(result.line())
        if result.lost or result.duplicates or not drained:
            sys.exit(1)


if __name__ == "__main__":
    main()
