"""Typed settings read from ``NOCTIS_*`` environment variables."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import msgspec

from noctis_contract.blocks import MAX_EPOCHS_PER_BLOCK, OFFLINE_HORIZON_DAYS, SECTOR_BYTES

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "change-me"


def retention_too_short(days: int) -> str | None:
    """Why a retention of `days` (0: none) would lose data, or None when it cannot."""
    if 0 < days < OFFLINE_HORIZON_DAYS:
        return (
            f"a retention of {days} days is shorter than the {OFFLINE_HORIZON_DAYS} days a device can hold "
            "epochs offline: nights it uploads late would be dropped after they were acknowledged"
        )
    return None


def _decode_path(type_: type, value: object) -> object:
    if type_ is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError(f"cannot read {type_} from the environment")


class Settings(msgspec.Struct, frozen=True):
    environment: str = "development"  # development | production
    data_dir: Path = REPO_ROOT / "var"
    database_url: str = ""  # empty: SQLite file in data_dir
    registry_dir: Path = REPO_ROOT / "model_export" / "registry"
    jwt_secret: str = ""  # empty in development: generated once, kept in data_dir
    ota_signing_key: str = ""  # hex Ed25519 seed (32 bytes); in development generated like jwt_secret
    jwt_issuer: str = "noctis"
    jwt_audience: str = "noctis-api"
    user_token_ttl_seconds: int = 3600
    device_token_ttl_seconds: int = 24 * 3600
    max_batch_epochs: int = 2880  # one day of epochs
    max_body_bytes: int = 2 * 1024 * 1024
    max_clock_skew_seconds: int = 600
    # Per worker: workers x 2 x db_pool_size must stay below PostgreSQL's max_connections
    # (100 by default: 4 workers x 2 x 10 = 80, leaving room for jobs and psql).
    db_pool_size: int = 10
    db_pool_timeout_seconds: float = 5.0  # no free connection this long: 503, not a queue
    db_statement_timeout_ms: int = 15_000
    db_lock_timeout_ms: int = 5_000
    model_poll_seconds: float = 10.0  # how soon a worker that hears no announcements follows an activation
    # Bounded work per worker (admission.py): beyond these a request is refused at once
    # with 503 + Retry-After instead of queueing.
    max_concurrent_requests: int = 8
    max_inflight_body_bytes: int = 64 * 1024 * 1024
    body_deadline_seconds: float = 30.0
    request_deadline_seconds: float = 30.0
    breaker_cooldown_seconds: float = 1.0
    # Brute-force limits on login and device-token exchange (accounts/throttle.py).
    auth_failures_per_account: int = 10
    auth_failures_per_source: int = 50
    auth_failure_window_seconds: int = 60
    internal_routes: bool = False  # /internal/*: drills and database policies, never on by default
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser; empty: none
    # Days TimescaleDB keeps epochs and predictions, applied by each migrate when set (0:
    # leave the policy as it is; /internal/db/policies changes it at run time). Never
    # shorter than a device can stay offline; epochs older than the retention in force
    # are refused at ingest (counted as gone), never acknowledged and then dropped.
    retention_days: int = 0

    def __post_init__(self) -> None:
        if reason := retention_too_short(self.retention_days):
            raise ValueError(f"retention_days: {reason}")
        # A device sends whole flash blocks: the server must take at least one.
        if self.max_batch_epochs < MAX_EPOCHS_PER_BLOCK or self.max_body_bytes < SECTOR_BYTES:
            raise ValueError(
                f"max_batch_epochs must be >= {MAX_EPOCHS_PER_BLOCK} and max_body_bytes >= {SECTOR_BYTES}: "
                "one flash block"
            )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'noctis.db'}"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        raw: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            key = f"NOCTIS_{field.name.upper()}"
            if key in environ:
                raw[field.name] = environ[key]
        raw.update(overrides)
        settings = msgspec.convert(raw, cls, strict=False, dec_hook=_decode_path)
        return settings.with_secret()

    def with_secret(self) -> Settings:
        """Refuse default secrets in production; in development keep generated ones in data_dir."""
        if self.environment == "production":
            if not self.jwt_secret or self.jwt_secret == DEFAULT_SECRET or len(self.jwt_secret) < 32:
                raise ValueError("NOCTIS_JWT_SECRET must be set to a real secret (32+ characters) in production")
            try:
                seed = bytes.fromhex(self.ota_signing_key)
            except ValueError:
                seed = b""
            if len(seed) != 32:
                raise ValueError("NOCTIS_OTA_SIGNING_KEY must be a 32-byte Ed25519 seed in hex in production")
            return self
        jwt_secret = self.jwt_secret if self.jwt_secret and self.jwt_secret != DEFAULT_SECRET else None
        return msgspec.structs.replace(
            self,
            jwt_secret=jwt_secret or self._kept_secret("jwt_secret", lambda: secrets.token_urlsafe(48)),
            ota_signing_key=self.ota_signing_key or self._kept_secret("ota_signing_key", lambda: secrets.token_hex(32)),
        )

    def _kept_secret(self, name: str, make: Callable[[], str]) -> str:
        # Every worker process reads the same file, so they agree across workers and restarts.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / name
        if not path.exists():
            path.write_text(make())
            path.chmod(0o600)
        return path.read_text().strip()
