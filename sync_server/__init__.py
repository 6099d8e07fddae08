"""The Noctis sync server: ingest, authoritative prediction, registry, OTA, metrics."""
