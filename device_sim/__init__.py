"""A protocol-exact device simulator: what the firmware does, in Python, against a real server.

It speaks the device's wire protocol with the contract's own codec (binary flash blocks
to /v1/epochs:ingest), keeps a flash queue with the firmware's semantics, and survives
scripted outages and lost responses. `python -m device_sim` drives a fleet.
"""
