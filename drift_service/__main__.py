"""python -m drift_service run [--hours 24] [--every SECONDS --metrics-port PORT]
python -m drift_service bench [--devices N --per-scenario N --seed S]

`run` computes a drift report for every device that sent epochs in the last window,
judges them together (drift_service.detector) and stores them in drift_reports (the
server shows them at /v1/model/drift). Once, for a cron job, or in a loop that also
serves fleet-level Prometheus gauges (never one series per device). `bench` measures
the detector on injected faults (drift_service.bench).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge, start_http_server

from drift_service.fleet import CONDITIONS, devices_by_model, devices_in_conditions
from drift_service.report import LEVELS, device_report, devices_with_epochs, history, judge, store
from sync_server.db import engine_for_job
from sync_server.models.service import ModelStore, load_active_server_model
from sync_server.settings import Settings

DEVICES_BY_LEVEL = Gauge("noctis_drift_devices", "Devices by drift level in the latest window", ["level"])
LOWEST_AGREEMENT = Gauge("noctis_drift_edge_agreement_min", "Lowest edge-vs-server agreement of any device")
MEDIAN_AGREEMENT = Gauge("noctis_drift_edge_agreement_median", "Median edge-vs-server agreement across devices")
DEVICES_IN_CONDITION = Gauge(
    "noctis_fleet_devices", "Devices in a condition that needs attention (drift_service.fleet)", ["condition"]
)
EDGE_MODELS = Gauge("noctis_edge_model_devices", "Devices by the edge model number their uploads carry", ["model"])
for _level in LEVELS:  # publish zeros from the start, not gaps
    DEVICES_BY_LEVEL.labels(_level)


async def run_once(settings: Settings, hours: float, end: datetime | None = None) -> list[dict[str, Any]]:
    """One report per device with epochs in the window ending at `end` (now), judged
    together, stored."""
    models = ModelStore(settings.registry_dir)
    end = end or datetime.now(UTC)
    start = end - timedelta(hours=hours)
    reports, histories = [], []
    async with engine_for_job(settings.resolved_database_url) as engine:
        async with engine.begin() as conn:
            await load_active_server_model(conn, models)
            if models.server is None:
                raise SystemExit("no server model could be loaded")
            due = await devices_with_epochs(conn, start, end)
        for tenant_id, device_id in due:
            async with engine.connect() as conn:  # one read transaction per device
                report = await device_report(
                    conn, tenant_id, device_id, start, end, models.server, models.server_manifest
                )
                histories.append(await history(conn, device_id, models.server.version))
            reports.append(report)
        judge(reports, histories)
        async with engine.begin() as conn:
            for report in reports:
                await store(conn, report)
            running = await devices_by_model(conn)
            attention = await devices_in_conditions(conn, end)
    publish(reports, running, attention)
    return reports


def publish(reports: list[dict[str, Any]], running: dict[int | None, int], attention: dict[str, int]) -> None:
    for condition in CONDITIONS:
        DEVICES_IN_CONDITION.labels(condition).set(attention[condition])
    EDGE_MODELS.clear()  # a model no device runs any more leaves the gauge
    for number, count in running.items():
        EDGE_MODELS.labels("none" if number is None else str(number)).set(count)
    for name in LEVELS:
        DEVICES_BY_LEVEL.labels(name).set(sum(r["level"] == name for r in reports))
    agreements = sorted(r["edge_agreement"] for r in reports if r["edge_agreement"] is not None)
    if agreements:
        LOWEST_AGREEMENT.set(agreements[0])
        MEDIAN_AGREEMENT.set(agreements[len(agreements) // 2])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m drift_service")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="compute and store drift reports")
    run.add_argument("--hours", type=float, default=24.0, help="window length, ending now")
    run.add_argument("--every", type=float, default=0.0, help="repeat every N seconds (0: once)")
    run.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus gauges on this port")
    bench = commands.add_parser("bench", help="measure detection, delay and false alarms on injected faults")
    bench.add_argument("--devices", type=int, default=300, help="simulated devices in the fleet")
    bench.add_argument("--per-scenario", type=int, default=20, help="simulated devices given each fault")
    bench.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "bench":
        from drift_service import bench as benchmark

        for line in benchmark.run(args.devices, args.per_scenario, args.seed):
            print(line)
        return
    settings = Settings.from_env()
    if args.metrics_port:
        start_http_server(args.metrics_port)
    while True:
        for report in asyncio.run(run_once(settings, args.hours)):
            verdict = report["details"]["verdict"]
            why = verdict.get("reason") or (f"{verdict['kind']} {verdict['statistic']}" if verdict["kind"] else "")
            print(
                f"{report['device_id']} level={report['level']} epochs={report['epochs']} "
                f"edge_agreement={report['edge_agreement']} {why}".rstrip()
            )
        if not args.every:
            break
        time.sleep(args.every)


if __name__ == "__main__":
    main()
