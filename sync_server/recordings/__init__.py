"""Recordings: one night on one device, a time window over that device's epochs."""
