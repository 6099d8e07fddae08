"""Drift: is the edge model still staging like the server, and do today's features and
stages still look like the training data?

`statistics` holds the pure maths; `report` computes and stores one report per device
and window; `python -m drift_service run` is the worker. The server reads the reports at
/v1/model/drift.
"""
