"""The audit log: what people did in a tenant, and GET /v1/audit to read it."""
