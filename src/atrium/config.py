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
    connect_timeout_seconds: float = Field(default=10.0, gt=0)
    pool_recycle_seconds: int = Field(default=1800, ge=-1)
    # PostgreSQL's max_parallel_workers_per_gather for Atrium's connections: 0 (no parallel
    # plans) because every query is an index-driven page or point lookup, where starting
    # workers costs more than it saves; -1 keeps the server's setting.
    parallel_workers_per_gather: int = Field(default=0, ge=-1)
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
    # Further Ed25519 keys (PEM, public or private) whose tokens are accepted and which
    # JWKS publishes: the previous key after a rotation, or the next one before it.
    verification_keys: list[SecretStr] = []
    verification_key_files: list[Path] = []
    # OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
    argon2_memory_cost_kib: int = Field(default=19_456, ge=1024)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_parallelism: int = Field(default=1, ge=1)
    hash_concurrency: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    hash_thread_niceness: int = Field(default=10, ge=0, le=19)
    password_min_length: int = Field(default=8, ge=8)
    password_max_length: int = Field(default=128, ge=64, le=1024)
    principal_cache_ttl_seconds: float = Field(default=5.0, ge=0)
    # Email flows (issue 3): token lifetimes, enumeration-safe registration, and what an
    # account whose email is not yet verified may do.
    enumeration_safe_registration: bool = False
    email_verification_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    password_reset_ttl_seconds: int = Field(default=15 * 60, ge=60, le=24 * 3600)
    email_change_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    unverified_allowed_actions: list[str] = Field(
        default_factory=lambda: [
            "account:update",
            "password:change",
            "sessions:read",
            "sessions:revoke",
        ]
    )

    @model_validator(mode="after")
    def _check_lifetimes(self) -> AuthSettings:
        if self.refresh_token_idle_ttl_seconds > self.refresh_token_absolute_ttl_seconds:
            raise ValueError("refresh_token_idle_ttl_seconds exceeds the absolute lifetime")
        return self


class HttpSettings(BaseModel):
    """The HTTP edge: body size, CORS, proxies, headers, access log."""

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Upload routes (avatar, files) take larger bodies: their own limit (avatars.max_bytes,
    # files.max_bytes) plus this allowance for the multipart framing, enforced by the edge
    # while the body streams, never above upload_max_body_bytes.
    upload_max_body_bytes: int = Field(default=64 * 1_048_576, ge=1024)
    multipart_overhead_bytes: int = Field(default=16_384, ge=0)
    cors_origins: list[str] = []
    cors_allow_credentials: bool = False
    trusted_proxies: list[str] = []
    hsts_max_age_seconds: int = Field(default=31_536_000, ge=0)
    access_log: bool = True


class RateLimitSettings(BaseModel):
    """Moving-window limits in the `limits` notation (``"5/minute;50/hour"``)."""

    enabled: bool = True
    fail_open: bool = True
    registration: str = "5/minute;20/hour"
    login: str = "20/minute;200/hour"
    refresh: str = "60/minute"
    forgot_password: str = "5/hour"  # noqa: S105 - a rate, not a password
    resend_verification: str = "3/hour"
    uploads: str = "30/hour"
    # Brute-force defence: failed logins per account and per IP within the window; past
    # the threshold each further attempt waits base * 2^(failures - threshold) seconds,
    # capped (a growing delay, never a permanent lock).
    login_failure_window: str = "100/hour"
    login_failures_per_account: int = Field(default=5, ge=1)
    login_failures_per_ip: int = Field(default=20, ge=1)
    login_delay_base_seconds: float = Field(default=1.0, gt=0)
    login_delay_max_seconds: float = Field(default=900.0, gt=0)

    def limits(self) -> dict[str, str]:
        return {
            "register": self.registration,
            "login": self.login,
            "refresh": self.refresh,
            "forgot_password": self.forgot_password,
            "resend_verification": self.resend_verification,
            "uploads": self.uploads,
            "login_failures_account": self.login_failure_window,
            "login_failures_ip": self.login_failure_window,
        }


class MetricsSettings(BaseModel):
    """``/metrics``: on by default; protect it with a bearer token in production."""

    enabled: bool = True
    token: SecretStr | None = None


class MailSettings(BaseModel):
    """Outgoing email: SMTP transport, sender, links, and the delivery worker.

    With no ``smtp_host`` messages are written as ``.eml`` files under
    ``<data_dir>/mail/`` (embedded default) instead of being sent.
    """

    smtp_host: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65_535)
    smtp_security: Literal["none", "starttls", "tls"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)
    smtp_validate_certs: bool = True
    from_address: str = "Atrium <no-reply@localhost>"
    link_base_url: str = "http://127.0.0.1:8000"
    verify_email_path: str = "/verify-email?token={token}"
    reset_password_path: str = "/reset-password?token={token}"  # noqa: S105 - a URL path
    confirm_email_change_path: str = "/confirm-email?token={token}"
    default_locale: str = "en"
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=30.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    lease_seconds: float = Field(default=300.0, gt=0)
    batch_size: int = Field(default=20, ge=1, le=1000)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    worker_in_api: bool = True

    @model_validator(mode="after")
    def _check_worker(self) -> MailSettings:
        if self.lease_seconds <= self.smtp_timeout_seconds:
            raise ValueError("mail.lease_seconds must exceed mail.smtp_timeout_seconds")
        for name in ("verify_email_path", "reset_password_path", "confirm_email_change_path"):
            if "{token}" not in getattr(self, name):
                raise ValueError(f"mail.{name} must contain {{token}}")
        return self

    @property
    def effective_smtp_port(self) -> int:
        """The configured port, else 465 for implicit TLS, 587 for STARTTLS, 25 otherwise."""
        if self.smtp_port is not None:
            return self.smtp_port
        return {"tls": 465, "starttls": 587, "none": 25}[self.smtp_security]


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


class StorageSettings(BaseModel):
    """Where avatars and files are kept: a local directory (embedded default) or an
    S3-compatible object store."""

    backend: Literal["local", "s3"] = "local"
    # Empty means ``<data_dir>/storage``.
    local_dir: Path | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_path_style: bool = False
    s3_key_prefix: str = ""
    # Downloads redirect to a presigned GET URL of the object store instead of passing
    # through the API (S3 only).
    s3_presigned_downloads: bool = False
    s3_presign_ttl_seconds: int = Field(default=300, ge=1, le=7 * 86_400)
    s3_timeout_seconds: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _check_s3(self) -> StorageSettings:
        if self.backend == "s3" and not self.s3_bucket:
            raise ValueError("storage.backend s3 requires storage.s3_bucket")
        return self


class AvatarSettings(BaseModel):
    """Avatar uploads: size and pixel limits, stored sizes."""

    max_bytes: int = Field(default=5 * 1_000_000, ge=1024)
    # Decompression-bomb guard: images with more pixels than this are refused (422).
    max_pixels: int = Field(default=40_000_000, ge=1)
    sizes: list[int] = Field(default_factory=lambda: [64, 256, 512])
    webp_quality: int = Field(default=85, ge=1, le=100)


class FileSettings(BaseModel):
    """User file uploads: allowed types (sniffed from content), size, malware scanning."""

    max_bytes: int = Field(default=10 * 1_048_576, ge=1024)
    allowed_types: list[str] = Field(
        default_factory=lambda: [
            "image/jpeg",
            "image/png",
            "image/gif",
            "image/webp",
            "application/pdf",
            "application/zip",
        ]
    )
    # ClamAV daemon (clamd) for INSTREAM scanning; unset means no scanning.
    clamd_host: str | None = None
    clamd_port: int = Field(default=3310, ge=1, le=65_535)
    clamd_timeout_seconds: float = Field(default=30.0, gt=0)


class ProfileSettings(BaseModel):
    """Public profile reads."""

    cache_ttl_seconds: float = Field(default=300.0, ge=0)


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
    # Sentry (sentry-sdk) error reporting when a DSN is set; PII is scrubbed before sending.
    sentry_dsn: SecretStr | None = None
    sentry_sample_rate: float = Field(default=1.0, ge=0, le=1)
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0, le=1)
    # Move every object alive after start-up into the collector's permanent generation
    # (gc.freeze): full collections then scan only what requests create.
    gc_freeze: bool = True

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    auth: AuthSettings = AuthSettings()
    http: HttpSettings = HttpSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    metrics: MetricsSettings = MetricsSettings()
    mail: MailSettings = MailSettings()
    rbac: RbacSettings = RbacSettings()
    accounts: AccountSettings = AccountSettings()
    storage: StorageSettings = StorageSettings()
    avatars: AvatarSettings = AvatarSettings()
    files: FileSettings = FileSettings()
    profiles: ProfileSettings = ProfileSettings()

    @model_validator(mode="after")
    def _production_requires_explicit_choices(self) -> Settings:
        if self.environment is Environment.production:
            if self.database.url is None:
                raise ValueError("production requires ATRIUM_DATABASE__URL")
            if self.auth.signing_key is None and self.auth.signing_key_file is None:
                raise ValueError(
                    "production requires ATRIUM_AUTH__SIGNING_KEY or ATRIUM_AUTH__SIGNING_KEY_FILE"
                )
            if self.mail.smtp_host is None:
                # .eml files in a server's data folder would be lost mail.
                raise ValueError("production requires ATRIUM_MAIL__SMTP_HOST")
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
    def mail_dir(self) -> Path:
        """Where ``.eml`` files are written when no SMTP server is configured."""
        return self.data_dir / "mail"

    @property
    def storage_dir(self) -> Path:
        """The local storage directory (``storage.local_dir`` or ``<data_dir>/storage``)."""
        return self.storage.local_dir or self.data_dir / "storage"

    @property
    def effective_log_format(self) -> str:
        if self.log_format:
            return self.log_format
        return "console" if self.environment is Environment.development else "json"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call."""
    return Settings()
