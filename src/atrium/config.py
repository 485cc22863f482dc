"""Settings: one object, nested groups, read from ``ATRIUM_*`` environment variables.

Nested groups use ``__`` as the delimiter: ``ATRIUM_DATABASE__URL``,
``ATRIUM_AUTH__ACCESS_TOKEN_TTL_SECONDS``. Every setting is listed in
``docs/configuration.md``.
"""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class DatabaseSettings(BaseModel):
    """Where the data lives. Empty ``url`` means the embedded SQLite file under ``data_dir``."""

    url: str | None = None
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    pool_timeout_seconds: float = Field(default=5.0, gt=0)
    echo: bool = False
    auto_migrate: bool = True


class RedisSettings(BaseModel):
    """Redis for the shared principal cache and revocations; unset means in-process."""

    url: str | None = None
    key_prefix: str = "atrium:"
    socket_timeout_seconds: float = Field(default=1.0, gt=0)


class AuthSettings(BaseModel):
    """Token, session and password-hashing parameters."""

    issuer: str = "atrium"
    audience: str = "atrium"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_idle_ttl_seconds: int = Field(default=14 * 86_400, ge=60)
    refresh_token_absolute_ttl_seconds: int = Field(default=30 * 86_400, ge=60)
    signing_key: SecretStr | None = None
    signing_key_file: Path | None = None
    # OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
    argon2_memory_cost_kib: int = Field(default=19_456, ge=1024)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    hash_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    password_min_length: int = Field(default=8, ge=8)
    password_max_length: int = Field(default=128, ge=64, le=1024)
    principal_cache_ttl_seconds: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _check_lifetimes(self) -> AuthSettings:
        if self.refresh_token_idle_ttl_seconds > self.refresh_token_absolute_ttl_seconds:
            raise ValueError("refresh_token_idle_ttl_seconds exceeds the absolute lifetime")
        return self


class RbacSettings(BaseModel):
    """Roles and permissions."""

    # How long a node may reuse a user's resolved permissions. Any role change publishes
    # a new version through the shared cache, so with Redis the change is seen at once on
    # every node; this lifetime bounds staleness only if that publication fails, or across
    # worker processes that each hold an in-process cache.
    permission_cache_ttl_seconds: float = Field(default=30.0, ge=0)


class AccountSettings(BaseModel):
    """Administration of accounts."""

    deleted_retention_days: int = Field(default=30, ge=0)


class Settings(BaseSettings):
    """All of Atrium's settings. Read once through :func:`get_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="ATRIUM_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    environment: Environment = Environment.development
    product_name: str = "Atrium"
    data_dir: Path = Path("var")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] | None = None
    admin_email: str | None = None
    admin_password: SecretStr | None = None

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    auth: AuthSettings = AuthSettings()
    rbac: RbacSettings = RbacSettings()
    accounts: AccountSettings = AccountSettings()

    @model_validator(mode="after")
    def _production_requires_explicit_choices(self) -> Settings:
        if self.environment is Environment.production:
            if self.database.url is None:
                raise ValueError("production requires ATRIUM_DATABASE__URL")
            if self.auth.signing_key is None and self.auth.signing_key_file is None:
                raise ValueError(
                    "production requires ATRIUM_AUTH__SIGNING_KEY or ATRIUM_AUTH__SIGNING_KEY_FILE"
                )
        return self

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL; the embedded default is ``sqlite+aiosqlite:///var/atrium.db``."""
        if self.database.url:
            return self.database.url
        return f"sqlite+aiosqlite:///{self.data_dir / 'atrium.db'}"

    @property
    def signing_key_path(self) -> Path:
        """File holding the PEM signing key; created on first run when absent."""
        return self.auth.signing_key_file or self.data_dir / "signing_key.pem"

    @property
    def effective_log_format(self) -> str:
        if self.log_format:
            return self.log_format
        return "console" if self.environment is Environment.development else "json"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()
