"""noctis_client: the Noctis API from Python, typed with the server's own msgspec structs.

    from noctis_client import Client, DeviceClient

    with Client("https://noctis.example.org") as noctis:
        noctis.sign_in("me@example.org", password)
        bedside = noctis.create_device("bedside")          # DeviceCreated: its secret, once
        night = noctis.create_recording(bedside.device.id, started_at)
        print(noctis.report(night.id).metrics["total_sleep_min"])

    with DeviceClient("https://noctis.example.org", device_id, secret) as device:
        ack = device.ingest(batch)                         # IngestAck; safe to resend

Every call has a timeout; GETs, ingest (idempotent by seq) and the token exchange are
retried on connection errors, 429 and 503, waiting what Retry-After says (else an
exponential backoff). A problem-details answer raises NoctisError with its detail.
"""

from noctis_client.client import Client, DeviceClient, NoctisError

__all__ = ["Client", "DeviceClient", "NoctisError"]
