import base64
import hashlib
import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from noctis_contract.ota import parse_manifest
from sync_server.settings import Settings
from tests.factories import bundled_version


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


def test_ota_routes_are_for_the_right_principals(client, tenant, device):
    assert client.get("/v1/ota/manifest", headers=tenant.headers).status_code == 403
    assert client.get("/v1/ota/public-key", headers=device.headers).status_code == 403
    assert client.get("/v1/ota/manifest").status_code == 401
    for name in ("server-2", "edge-999", "..%2F..%2Fetc%2Fpasswd", "manifest.json"):
        assert client.get(f"/v1/ota/models/{name}", headers=device.headers).status_code == 404, name
