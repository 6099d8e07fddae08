"""The firmware's own code (noctis-device) provisioned over its console and talking TLS
to the real server: it trusts only the CA it was given, and keeps what it cannot send."""

import datetime as dt
import ipaddress
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from device_sim.firmware import FirmwareDevice, build_firmware
from tests.conftest import PASSWORD, LiveServer, make_settings
from tests.factories import edge_lookahead, stored_seqs

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=12)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    """A CA, the server's certificate for 127.0.0.1 signed by it, and an unrelated CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca_key, ca = _ca("Noctis test CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "server.pem").write_text(_pem(server))
    (directory / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (directory / "ca.pem").write_text(_pem(ca))
    return {
        "ca_file": directory / "ca.pem",
        "cert": directory / "server.pem",
        "key": directory / "server.key",
        "ca": _pem(ca),
        "stranger": _pem(_ca("Some other CA")[1]),
    }


def _provision(device: FirmwareDevice, ca_pem: str) -> list[str]:
    lines = ["provision ca-begin", *(f"provision {line}" for line in ca_pem.strip().splitlines()), "provision ca-end"]
    return device.run(lines)


def _record_night(device: FirmwareDevice, epochs: int) -> None:
    codes = np.full(15, 100, dtype=np.uint8)
    lines = ["time 0", f"clock {int(NOW.timestamp())}"]
    for i in range(1, epochs + 1):
        lines += device.record(i * 30_000, codes, stage=1)
    device.run(lines)


def test_the_device_talks_tls_to_a_server_its_ca_signed_and_refuses_any_other(
    pki, database_url, make_tenant, make_device, tmp_path
):
    build_firmware()
    tenant = make_tenant()
    trusting, misled = make_device(tenant, "trusting"), make_device(tenant, "misled")
    settings = make_settings(database_url, tmp_path)
    with LiveServer(settings, ssl_certfile=str(pki["cert"]), ssl_keyfile=str(pki["key"])) as server:
        assert server.url.startswith("https://")
        good = FirmwareDevice(tmp_path / "trusting", server.url, trusting.id, trusting.secret)
        bad = FirmwareDevice(tmp_path / "misled", server.url, misled.id, misled.secret)
        for device, ca in ((good, pki["ca"]), (bad, pki["stranger"])):
            device.start(0)
            assert _provision(device, ca)[-1].startswith("ok ca ")
            _record_night(device, 20)
            device.sync(20 * 30_000)

        # Up: all but the newest, which wait for their stage (the model's lookahead).
        assert good.status()["pending"] == good.held == edge_lookahead()
        assert stored_seqs(database_url, trusting.id) == list(range(20 - good.held))
        # The wrong CA: no upload verifies, nothing reaches the server, nothing is lost.
        assert bad.status()["pending"] == 20
        assert stored_seqs(database_url, misled.id) == []

        # The right CA later (over the console, while running): the queue drains.
        _provision(bad, pki["ca"])
        bad.sync(21 * 30_000)
        assert stored_seqs(database_url, misled.id) == list(range(20 - bad.held))

        # Provisioning survives a restart; secrets are never printed back.
        good.stop()
        good.start(21 * 30_000)
        (shown,) = good.run(["provision show"])
        assert f"device_id={trusting.id}" in shown and "secret=(set)" in shown and "ca=(" in shown
        assert trusting.secret not in shown
        _record_night(good, 3)
        good.sync(25 * 30_000)
        assert good.status()["pending"] == good.held
        for device in (good, bad):
            device.stop()

        # From nothing: the helper registers a device and prints its console lines.
        helper = subprocess.run(
            [sys.executable, "-m", "device_sim", "provision", "--server", server.url, "--email", tenant.email,
             "--password", PASSWORD, "--name", "fresh", "--ca", str(pki["ca_file"]), "--ssid", "Bedroom",
             "--wifi-password", "not shown"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
        lines = helper.stdout.strip().splitlines()
        device_id = next(line.split()[2] for line in lines if line.startswith("set device_id "))
        fresh = FirmwareDevice(tmp_path / "fresh", "", "", "")
        fresh.start(0)
        assert fresh.run([f"provision {line}" for line in lines])[-1] == "ready"
        _record_night(fresh, 15)
        fresh.sync(15 * 30_000)
        assert stored_seqs(database_url, device_id) == list(range(15 - fresh.held))
        fresh.stop()
