"""Drift reports as the server shows them (drift_service computes them)."""
