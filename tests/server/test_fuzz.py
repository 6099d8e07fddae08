"""Property-based fuzzing from the server's own OpenAPI schema (schemathesis): every
operation, with a user's token, a device's token and none, on both databases: no
answer >= 500."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import Device, LiveServer, Tenant

EXAMPLES_PER_OPERATION = 40


def test_no_generated_request_makes_the_server_fail(live_server: LiveServer, tenant: Tenant, device: Device) -> None:
    schema = schemathesis.openapi.from_url(f"{live_server.url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[tuple[str, str, int, str]] = []
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same requests in every run: a failure here is reproducible
            database=None,
        )
        def call(case) -> None:  # type: ignore[no-untyped-def]
            nonlocal calls
            for headers in (tenant.headers, device.headers, {}):
                response = case.call(base_url=live_server.url, headers=headers)
                calls += 1
                if response.status_code >= 500:
                    failures.append((case.method, case.formatted_path, response.status_code, response.text[:200]))

        call()
    print(f"fuzz: {calls} requests over {len(operations)} operations, {len(failures)} answers >= 500")
    assert calls > 1000
    assert not failures, "\n".join(map(str, sorted(set(failures))))
