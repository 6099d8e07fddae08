import asyncio
import base64
import hashlib
import json
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from model_export.__main__ import DEFAULT_REGISTRY
from noctis_contract.ota import parse_manifest
from sync_server import migrate
from sync_server.__main__ import bootstrap_tenant
from sync_server.models import lifecycle
from sync_server.models.service import ModelStore, activate, active_version
from sync_server.ota import rollouts
from sync_server.ota.service import bucket
from sync_server.settings import Settings
from sync_server.tenancy import TenantRepository
from tests.conftest import PASSWORD, LiveServer, login, make_settings, register_device
from tests.factories import batch_json, bundled_version, model_registry, registered_variant, run_lifecycle


def test_device_gets_a_signed_manifest_and_the_model_it_describes(client, tenant, device):
    offer = client.get("/v1/ota/manifest", headers=device.headers)
    assert offer.status_code == 200, offer.text
    offer = offer.json()
    assert offer["version"] == bundled_version("edge")
    key = client.get("/v1/ota/public-key", headers=tenant.headers).json()
    manifest = base64.b64decode(offer["manifest"])
    # Raises if the signature does not verify.
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["public_key"])).verify(
        base64.b64decode(offer["signature"]), manifest
    )
    parsed = parse_manifest(manifest)
    model = client.get(offer["download"], headers=device.headers)
    assert model.status_code == 200
    assert model.headers["content-type"] == "application/octet-stream"
    assert parsed["size"] == len(model.content) == offer["size"]
    assert parsed["sha256"] == hashlib.sha256(model.content).hexdigest()
    registry = json.loads((Settings().registry_dir / offer["version"] / "manifest.json").read_text())
    assert parsed["model_version"] == registry["version_number"]
    assert parsed["arena_bytes"] == registry["budget"]["tensor_arena_bytes"]
    assert parsed["lookahead_epochs"] == registry.get("lookahead_epochs", 0)  # signed with the model
    assert len(manifest) == (60 if parsed["lookahead_epochs"] else 56)  # format 1 for firmware 1 when it can


def test_ota_routes_are_for_the_right_principals(client, tenant, device):
    assert client.get("/v1/ota/manifest", headers=tenant.headers).status_code == 403
    assert client.get("/v1/ota/public-key", headers=device.headers).status_code == 403
    assert client.get("/v1/ota/manifest").status_code == 401
    for name in ("server-2", "edge-999", "..%2F..%2Fetc%2Fpasswd", "manifest.json"):
        assert client.get(f"/v1/ota/models/{name}", headers=device.headers).status_code == 404, name


def _offer(client, device):
    response = client.get("/v1/ota/manifest", headers=device.headers)
    assert response.status_code == 200, response.text
    offer = response.json()
    parsed = parse_manifest(base64.b64decode(offer["manifest"]))
    assert parsed["rollout"] == offer["rollout"]  # the number is signed, not only said
    return offer["version"], offer["rollout"], parsed["model_version"]


def _upload_staged_with(client, device, model_number, seq):
    batch = batch_json([seq], edge_model_version=model_number)
    assert client.post("/v1/epochs:ingest", json=batch, headers=device.headers).status_code == 200


def test_a_staged_rollout_reaches_its_share_widens_pauses_and_rolls_back(
    client, make_tenant, make_device, database_url, tmp_path
):
    """A tenant's release of a new edge model to 25 % of its devices: the same devices by
    id, the rest keep the fleet's; pausing stops new devices only; widening reaches all; a
    rollback offers the old one under a newer number (a signed downgrade). Another tenant
    sees none of it."""
    base = bundled_version("edge")  # what the fleet runs: the shared database activated it
    base_number = int(json.loads((DEFAULT_REGISTRY / base / "manifest.json").read_text())["version_number"])
    new, new_number = f"edge-{base_number + 1}", base_number + 1
    registry = model_registry(tmp_path, base, bundled_version("server"))
    registered_variant(registry, base, new, 0.3, version_number=new_number)
    tenant, other = make_tenant(), make_tenant()
    fleet = [make_device(tenant, f"bed-{i}") for i in range(24)]
    # Device ids are random: about 1 run in 100, fewer than two of 24 fell in the 25 %.
    while sum(bucket(uuid.UUID(d.id)) < 25 for d in fleet) < 2:
        fleet.append(make_device(tenant, f"bed-{len(fleet)}"))
    outsider = make_device(other)
    repo = lambda conn: TenantRepository(conn, uuid.UUID(tenant.id))  # noqa: E731

    async def bundled_is_active(conn, store):  # as on a server that started with the bundled registry
        if await active_version(conn, "edge") is None:
            await activate(conn, "edge", base, actor="test", reason="bundled", action="bootstrap")

    run_lifecycle(database_url, registry, bundled_is_active)
    settings = make_settings(database_url, tmp_path, registry_dir=registry)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as http:
        assert {_offer(http, d)[:2] for d in fleet} == {(base, 0)}

        release = run_lifecycle(
            database_url, registry, lambda conn, store: rollouts.release(repo(conn), store, new, 25, "test", "")
        )
        chosen = {d.id for d in fleet if bucket(uuid.UUID(d.id)) < 25}
        assert 0 < len(chosen) < len(fleet)
        offers = {d.id: _offer(http, d) for d in fleet}
        assert {d for d, (version, _, _) in offers.items() if version == new} == chosen
        assert {offers[d] for d in chosen} == {(new, release["id"], new_number)}
        assert _offer(http, outsider)[:2] == (base, 0)

        # One chosen device installs it (its uploads say so); then the rollout is paused.
        installed, waiting = sorted(chosen)[:2]
        by_id = {d.id: d for d in fleet}
        _upload_staged_with(http, by_id[installed], new_number, seq=0)
        run_lifecycle(database_url, registry, lambda conn, store: rollouts.set_state(repo(conn), "paused"))
        assert _offer(http, by_id[installed])[0] == new  # keeps what it runs
        assert _offer(http, by_id[waiting])[0] == base  # takes nothing new while paused
        with pytest.raises(rollouts.RolloutError, match="rolling out at 25 %"):
            run_lifecycle(
                database_url, registry, lambda conn, store: rollouts.release(repo(conn), store, base, 50, "t", "")
            )
        run_lifecycle(database_url, registry, lambda conn, store: rollouts.set_state(repo(conn), "active"))
        run_lifecycle(
            database_url, registry, lambda conn, store: rollouts.release(repo(conn), store, new, 100, "t", "")
        )
        assert {_offer(http, d) for d in fleet} == {(new, release["id"], new_number)}
        with pytest.raises(rollouts.RolloutError, match="only widens"):
            run_lifecycle(
                database_url, registry, lambda conn, store: rollouts.release(repo(conn), store, new, 50, "t", "")
            )

        back = run_lifecycle(database_url, registry, lambda conn, store: rollouts.roll_back(repo(conn), "test", ""))
        assert back["id"] > release["id"]
        assert {_offer(http, d) for d in fleet} == {(base, back["id"], base_number)}
        assert _offer(http, outsider)[:2] == (base, 0)

        shown = http.get(f"/v1/devices/{installed}", headers=tenant.headers).json()
        assert shown["ota_offered_version"] == base and shown["ota_offered_rollout"] == back["id"]
        assert shown["edge_model_number"] == new_number and shown["edge_model_since"] is not None
        logged = [e["action"] for e in http.get("/v1/audit", headers=tenant.headers).json()]
        assert logged[:5] == [
            "rollout.rollback",
            "rollout.release",
            "rollout.resume",
            "rollout.pause",
            "rollout.release",
        ]
        status = run_lifecycle(database_url, registry, lambda conn, store: rollouts.status(repo(conn), store))
        assert status[0].startswith(f"rollout #{back['id']}: {base} to 100 %")
        assert status[-1].startswith(f"devices {len(fleet)};")


def test_fleet_wide_promote_and_rollback_of_the_edge_model_reach_devices_as_newer_rollouts(tmp_path):
    registry = model_registry(tmp_path, "edge-1", bundled_version("server"))
    registered_variant(registry, "edge-1", "edge-2", 0.9, version_number=2)
    url = f"sqlite+aiosqlite:///{tmp_path / 'fleet.db'}"
    migrate.upgrade(url)
    asyncio.run(bootstrap_tenant(url, "lab", "lab@example.com", PASSWORD))
    settings = make_settings(url, tmp_path, registry_dir=registry)
    with LiveServer(settings) as server, httpx.Client(base_url=server.url) as http:
        device = register_device(http, login(http, "lab@example.com"))
        assert _offer(http, device) == ("edge-2", 0, 2)  # bootstrap: the newest registered
        run_lifecycle(url, registry, lambda conn, store: lifecycle.promote(conn, store, "edge-1", "t", "", force=True))
        version, first, number = _offer(http, device)
        assert (version, number) == ("edge-1", 1) and first > 0
        run_lifecycle(url, registry, lambda conn, store: lifecycle.rollback(conn, store, "edge", "t", ""))
        version, second, number = _offer(http, device)
        assert (version, number) == ("edge-2", 2) and second > first


def test_a_device_on_firmware_1_is_offered_the_newest_model_it_can_install(client, device):
    """Firmware 1 refuses format-2 manifests (models with a lookahead); offered one, it
    would download, verify and refuse it on every poll and never improve again."""
    from noctis_contract.session import DeviceHealth, SessionRecord, encode_session
    from tests.server.test_sync_v2 import blocks, upload

    manifest = ModelStore(Settings().registry_dir).registered("edge")  # version -> its manifest

    def report_firmware(version, incarnation, seq):
        session = SessionRecord(incarnation, 0, health=DeviceHealth(firmware_version=version))
        upload(client, device, encode_session(session) + blocks(seq, 1))

    newest, _, _ = _offer(client, device)  # before any upload: taken to be current firmware
    assert manifest[newest].get("lookahead_epochs", 0) > 0  # the premise: the bundled model stages late

    report_firmware(1, incarnation=1, seq=0)
    version, _, number = _offer(client, device)
    lookahead_free = [v for v in manifest if not manifest[v].get("lookahead_epochs")]
    assert version == max(lookahead_free, key=lambda v: manifest[v]["version_number"])
    offer = client.get("/v1/ota/manifest", headers=device.headers).json()
    assert len(base64.b64decode(offer["manifest"])) == 56  # format 1, what firmware 1 reads
    assert number < manifest[newest]["version_number"]

    report_firmware(2, incarnation=2, seq=0)  # updated firmware: the newest again
    assert _offer(client, device)[0] == newest
