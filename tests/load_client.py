"""Many concurrent uploads from one process (so that a test can spread a load over
several processes and not measure its own GIL):

    python -m tests.load_client URL AUTHORIZATION CONCURRENT BODY_FILE

prints one line per request: status, seconds, whether Retry-After was given."""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx


def main() -> None:
    url, authorization, concurrent, body_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    body = open(body_file, "rb").read()
    headers = {"Authorization": authorization, "content-type": "application/json"}

    def upload(_: int) -> str:
        started = time.monotonic()
        with httpx.Client(base_url=url, timeout=120) as client:
            response = client.post("/v1/epochs:ingest", content=body, headers=headers)
        return f"{response.status_code} {time.monotonic() - started:.3f} {int('retry-after' in response.headers)}"

    with ThreadPoolExecutor(concurrent) as pool:
        print("\n".join(pool.map(upload, range(concurrent))))


if __name__ == "__main__":
    main()
