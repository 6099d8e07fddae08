"""The HTTP side of noctis_client: one session per client, retries, pagination, errors."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any, TypeVar

import httpx
import msgspec

from noctis_contract.wire import IngestAck, IngestBatch
from sync_server.accounts.schemas import TokenResponse
from sync_server.devices.schemas import DeviceCreated, DeviceOut
from sync_server.drift.schemas import DriftReportOut
from sync_server.predict.schemas import PredictResponse, RescoreResult, SleepReport
from sync_server.recordings.schemas import RecordingOut

T = TypeVar("T")
RETRIED_STATUS = (429, 503)  # the server says: not now, come back (Retry-After)
PAGE = 1000  # the server's largest page


class NoctisError(Exception):
    """An answer the call cannot use: the server's problem details, or no answer at all."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(f"{status} {title}: {detail}" if status else f"{title}: {detail}")
        self.status, self.title, self.detail = status, title, detail


class _Http:
    def __init__(self, base_url: str, timeout: float, retries: int, verify: str | bool) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout, verify=verify)
        self.retries = retries
        self.token: str | None = None

    def close(self) -> None:
        self.http.close()

    def call(self, method: str, path: str, retry: bool, body: Any = None, **kwargs: Any) -> httpx.Response:
        """One request (body: encoded as JSON with msgspec), retried when retry is set on
        connection errors, 429 and 503."""
        headers = {"authorization": f"Bearer {self.token}"} if self.token else {}
        if body is not None:
            headers["content-type"] = "application/json"
            kwargs["content"] = msgspec.json.encode(body)
        for attempt in range(self.retries + 1):
            last = attempt == self.retries or not retry
            try:
                response = self.http.request(method, path, headers=headers, **kwargs)
            except httpx.TransportError as exc:
                if last:
                    raise NoctisError(0, "no answer", str(exc) or type(exc).__name__) from exc
                time.sleep(min(0.5 * 2.0**attempt, 30.0))
                continue
            if response.status_code in RETRIED_STATUS and not last:
                time.sleep(_retry_after(response, attempt))
                continue
            if response.is_error:
                raise _problem(response)
            return response
        raise AssertionError("unreachable")

    def decode(self, response: httpx.Response, kind: type[T]) -> T:
        return msgspec.json.decode(response.content, type=kind)


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        wait: float = min(float(response.headers.get("retry-after", "")), 60.0)
        return wait
    except ValueError:
        return min(0.5 * 2.0**attempt, 30.0)


def _problem(response: httpx.Response) -> NoctisError:
    try:
        body = response.json()
        return NoctisError(response.status_code, str(body.get("title", "")), str(body.get("detail", "")))
    except ValueError:
        return NoctisError(response.status_code, response.reason_phrase, response.text[:200])


class Client:
    """A user of a tenant: devices, recordings, staging, reports, drift."""

    def __init__(
        self, base_url: str, timeout: float = 30.0, retries: int = 3, verify: str | bool = True, page_size: int = PAGE
    ) -> None:
        self._http = _Http(base_url, timeout, retries, verify)
        self.page_size = page_size

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def sign_in(self, email: str, password: str) -> None:
        response = self._http.call("POST", "/v1/auth/token", True, {"email": email, "password": password})
        self._http.token = self._http.decode(response, TokenResponse).access_token

    def _pages(self, path: str, kind: type[T]) -> Iterator[T]:
        offset = 0
        while True:
            response = self._http.call("GET", path, True, params={"limit": self.page_size, "offset": offset})
            page = self._http.decode(response, list[kind])  # type: ignore[valid-type]
            yield from page
            if len(page) < self.page_size:
                return
            offset += self.page_size

    def devices(self) -> Iterator[DeviceOut]:
        """Every device of the tenant, page after page."""
        return self._pages("/v1/devices", DeviceOut)

    def device(self, device_id: uuid.UUID | str) -> DeviceOut:
        return self._http.decode(self._http.call("GET", f"/v1/devices/{device_id}", True), DeviceOut)

    def create_device(self, name: str) -> DeviceCreated:
        """A new device; its secret is in the answer only (provision it into the device)."""
        return self._http.decode(self._http.call("POST", "/v1/devices", False, {"name": name}), DeviceCreated)

    def recordings(self) -> Iterator[RecordingOut]:
        """Every recording of the tenant, newest night first."""
        return self._pages("/v1/recordings", RecordingOut)

    def recording(self, recording_id: uuid.UUID | str) -> RecordingOut:
        return self._http.decode(self._http.call("GET", f"/v1/recordings/{recording_id}", True), RecordingOut)

    def create_recording(
        self, device_id: uuid.UUID | str, started_at: datetime, ended_at: datetime | None = None, label: str = ""
    ) -> RecordingOut:
        body = {"device_id": str(device_id), "started_at": started_at, "ended_at": ended_at, "label": label}
        return self._http.decode(self._http.call("POST", "/v1/recordings", False, body), RecordingOut)

    def end_recording(self, recording_id: uuid.UUID | str, ended_at: datetime) -> RecordingOut:
        response = self._http.call("PATCH", f"/v1/recordings/{recording_id}", True, {"ended_at": ended_at})
        return self._http.decode(response, RecordingOut)

    def stage(self, recording_id: uuid.UUID | str) -> PredictResponse:
        """The server model's stages for a stored night (authoritative; nothing stored)."""
        response = self._http.call("POST", "/v1/predict", True, {"recording_id": str(recording_id)})
        return self._http.decode(response, PredictResponse)

    def rescore(self, recording_id: uuid.UUID | str) -> RescoreResult:
        """Score and store the night's stages with the active model (idempotent)."""
        response = self._http.call("POST", f"/v1/predict/recordings/{recording_id}", True)
        return self._http.decode(response, RescoreResult)

    def report(self, recording_id: uuid.UUID | str) -> SleepReport:
        response = self._http.call("GET", f"/v1/predict/recordings/{recording_id}/report", True)
        return self._http.decode(response, SleepReport)

    def hypnogram_svg(self, recording_id: uuid.UUID | str) -> str:
        return self._http.call("GET", f"/v1/predict/recordings/{recording_id}/hypnogram.svg", True).text

    def drift(self) -> list[DriftReportOut]:
        """The latest drift report of each device, worst first."""
        return self._http.decode(self._http.call("GET", "/v1/model/drift", True), list[DriftReportOut])


class DeviceClient:
    """A device (or a gateway in front of one): its token and uploads. For integrators
    whose hardware is not a Noctis device; Noctis devices run the firmware."""

    def __init__(
        self,
        base_url: str,
        device_id: uuid.UUID | str,
        secret: str,
        timeout: float = 30.0,
        retries: int = 3,
        verify: str | bool = True,
    ) -> None:
        self._http = _Http(base_url, timeout, retries, verify)
        self.device_id, self._secret = str(device_id), secret

    def __enter__(self) -> DeviceClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def _sign_in(self) -> None:
        body = {"device_id": self.device_id, "secret": self._secret}
        response = self._http.call("POST", "/v1/auth/device-token", True, body)
        self._http.token = self._http.decode(response, TokenResponse).access_token

    def ingest(self, batch: IngestBatch) -> IngestAck:
        """Upload a batch of epochs. Resending is safe: each seq is stored once, and the
        answer's ack_seq says up to where everything is stored."""
        if self._http.token is None:
            self._sign_in()
        try:
            response = self._http.call("POST", "/v1/epochs:ingest", True, batch)
        except NoctisError as exc:
            if exc.status != 401:
                raise
            self._sign_in()  # the token expired: one new one, once
            response = self._http.call("POST", "/v1/epochs:ingest", True, batch)
        return self._http.decode(response, IngestAck)
