"""noctis_client against the real server: sign in, pages, a device's uploads, nights,
stages, reports, drift; and its retries against a server that says "not now"."""

import threading
import time
import uuid
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest

from noctis_client import Client, DeviceClient, NoctisError
from noctis_contract.wire import IngestBatch
from tests.conftest import PASSWORD
from tests.factories import NIGHT_START, batch_json
from tests.postgres import free_port


def test_the_client_does_what_a_user_and_a_device_do(live_server, make_tenant):
    tenant = make_tenant()
    with Client(live_server.url, page_size=7) as noctis:
        with pytest.raises(NoctisError) as refused:
            noctis.sign_in(tenant.email, "not the password")
        assert refused.value.status == 401
        noctis.sign_in(tenant.email, PASSWORD)
        created = [noctis.create_device(f"bed-{i}") for i in range(16)]
        assert {d.id for d in noctis.devices()} == {c.device.id for c in created}  # three pages of 7

        first = created[0]
        batch = msgspec.convert(batch_json(range(120)), IngestBatch)
        with DeviceClient(live_server.url, first.device.id, first.secret) as device:
            assert device.ingest(batch).ack_seq == 119
            again = device.ingest(batch)  # a resend: stored once
            assert again.accepted == 0 and again.duplicates == 120
        assert noctis.device(first.device.id).ack_seq == 119

        night = noctis.create_recording(first.device.id, NIGHT_START, label="first")
        night = noctis.end_recording(night.id, NIGHT_START + timedelta(hours=1))
        assert night.epoch_count == 120 and night.label == "first"
        assert [r.id for r in noctis.recordings()] == [night.id]
        assert len(noctis.stage(night.id).epochs) == 120
        assert noctis.rescore(night.id).epochs == 120
        assert noctis.report(night.id).epochs == 120
        assert "<svg" in noctis.hypnogram_svg(night.id)
        assert isinstance(noctis.drift(), list)
        with pytest.raises(NoctisError) as missing:
            noctis.recording(uuid.uuid4())
        assert missing.value.status == 404 and "not found" in missing.value.detail


class _Busy(BaseHTTPRequestHandler):
    """A server that answers 503 with Retry-After: 1 to the first request, then []."""

    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        if type(self).calls == 1:
            self.send_response(503)
            self.send_header("retry-after", "1")
            self.send_header("content-type", "application/problem+json")
            body = b'{"title": "Service unavailable", "detail": "busy"}'
        else:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            body = b"[]"
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


def test_the_client_waits_as_retry_after_says_and_gives_up_on_a_dead_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Busy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with Client(f"http://127.0.0.1:{server.server_address[1]}") as noctis:
            started = time.monotonic()
            assert list(noctis.devices()) == []
            assert _Busy.calls == 2 and time.monotonic() - started >= 1.0
    finally:
        server.shutdown()
    with Client(f"http://127.0.0.1:{free_port()}", retries=1, timeout=2) as nobody:
        with pytest.raises(NoctisError) as dead:
            nobody.drift()
        assert dead.value.status == 0 and dead.value.title == "no answer"
