"""Typed settings read from ``NOCTIS_*`` environment variables."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import msgspec

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "change-me"


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
    jwt_issuer: str = "noctis"
    jwt_audience: str = "noctis-api"
    user_token_ttl_seconds: int = 3600
    device_token_ttl_seconds: int = 24 * 3600
    max_batch_epochs: int = 2880  # one day of epochs
    max_body_bytes: int = 2 * 1024 * 1024
    max_clock_skew_seconds: int = 600
    db_pool_size: int = 10

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
        """Refuse a default secret in production; in development keep one in data_dir."""
        if self.jwt_secret and self.jwt_secret != DEFAULT_SECRET:
            if self.environment == "production" and len(self.jwt_secret) < 32:
                raise ValueError("NOCTIS_JWT_SECRET must be at least 32 characters in production")
            return self
        if self.environment == "production":
            raise ValueError("NOCTIS_JWT_SECRET must be set to a real secret in production")
        # Every worker process reads the same file, so tokens work across workers and restarts.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        secret_file = self.data_dir / "jwt_secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(48))
            secret_file.chmod(0o600)
        return msgspec.structs.replace(self, jwt_secret=secret_file.read_text().strip())
