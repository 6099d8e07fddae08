"""Over-the-air edge-model updates: signed manifests and model downloads for devices."""
