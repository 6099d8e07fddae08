"""Prometheus metrics of the domain; HTTP metrics come from Litestar's middleware.

Labels are bounded sets (outcomes, model versions), never raw paths or ids.
"""

from prometheus_client import Counter, Histogram

EPOCHS_INGESTED = Counter("noctis_epochs_ingested_total", "Epochs received by ingest, by outcome", ["outcome"])
PREDICTIONS_SERVED = Counter("noctis_predictions_total", "Epochs scored by /v1/predict", ["model_version"])
INFERENCE_SECONDS = Histogram("noctis_inference_seconds", "Time in the server model per predict call")

# Publish every outcome from the start, so dashboards and rate() see zeros, not gaps.
for _outcome in ("accepted", "duplicate", "rejected"):
    EPOCHS_INGESTED.labels(_outcome)
