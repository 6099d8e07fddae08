"""Tenants, users and the token exchange for users and devices."""
