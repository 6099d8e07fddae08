"""Epoch ingest: validate, store exactly once per (device, seq), acknowledge."""
