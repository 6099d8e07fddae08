"""Authoritative inference with the active server model."""
