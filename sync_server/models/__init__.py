"""The model registry as the server sees it: active versions and in-memory models."""
