"""The deployment files refer to things that exist: every metric a dashboard queries is
one the server or the drift worker exports."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_services_and_mounted_files_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"db", "server", "drift", "prometheus", "grafana"} <= set(compose["services"])
    for service in compose["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_dashboard_queries_only_exported_metrics(client, tenant):
    from drift_service import __main__ as drift_worker  # registers the drift gauges

    assert drift_worker.DEVICES_BY_LEVEL is not None
    from prometheus_client import REGISTRY, generate_latest

    # Series with open label sets appear once used: one request and one prediction.
    client.post("/v1/predict", headers=tenant.headers, json={"epochs": [{"features": [None] * 15}]})
    exported = client.get("/metrics").text + generate_latest(REGISTRY).decode()
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)", exported, flags=re.M))
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/noctis.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            for metric in re.findall(r"\b(noctis_[a-z_]+)", target["expr"]):
                assert metric in names, f"{panel['title']}: {metric} is not exported"
