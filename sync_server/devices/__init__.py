"""Bedside devices: registration, credentials, sync state."""
