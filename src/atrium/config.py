"""Settings: one object, nested groups, read from ``ATRIUM_*`` environment variables.

Nested groups use ``__`` as the delimiter: ``ATRIUM_DATABASE__URL``,
``ATRIUM_AUTH__ACCESS_TOKEN_TTL_SECONDS``. Every setting is listed in
``docs/configuration.md``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator, Mapping
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "ATRIUM_"
# Variables of Atrium's tooling, not of the server: the test suite (ATRIUM_TEST_...), the
# backup and deployment scripts of deploy/. Never reported as unknown.
TEST_ENV_PREFIX = "ATRIUM_TEST_"
TOOLING_PREFIXES = (TEST_ENV_PREFIX, "ATRIUM_BACKUP_", "ATRIUM_DEPLOY_")
TOOLING_VARIABLES = frozenset(
    {
        "ATRIUM_SECRETS_DIR",
        "ATRIUM_SERVICES",
        "ATRIUM_IMAGE",
        "ATRIUM_BASE_IMAGE",
        "ATRIUM_BASE_CACHE",
        "ATRIUM_UI_SCREENSHOTS",
    }
)
_SUPPORTED_DATABASES = ("sqlite+aiosqlite", "postgresql+asyncpg")


class StartupError(Exception):
    """A configuration or environment mistake found before serving: the message is one
    line for the operator, naming the environment variable at fault and what to do."""


def env_name(*loc: str | int) -> str:
    """The environment variable of a setting: ``("auth", "access_token_ttl_seconds")`` ->
    ``ATRIUM_AUTH__ACCESS_TOKEN_TTL_SECONDS``. Positions in lists are dropped."""
    return ENV_PREFIX + "__".join(str(p).upper() for p in loc if isinstance(p, str))


class UnverifiedAction(StrEnum):
    """What an account whose email is not verified may be let do with its own account
    (``auth.unverified_allowed_actions``). These are not RBAC permissions (they gate the
    caller's own account, never another's): they are spelt ``own_<thing>.<verb>``, which no
    permission (``<resource>:<action>``) can be, and ``rbac.dependencies.require`` refuses
    them. The spellings of releases before 0.3 (``account:update``, ``password:change``,
    ``sessions:read``, ``sessions:revoke``) are still read, as :data:`LEGACY_UNVERIFIED_ACTIONS`."""

    update_own_account = "own_account.update"
    change_own_password = "own_password.change"  # noqa: S105  # nosec B105 - an action name
    read_own_sessions = "own_sessions.read"
    revoke_own_sessions = "own_sessions.revoke"


# Earlier spellings of the unverified-account actions, still accepted in settings.
LEGACY_UNVERIFIED_ACTIONS: dict[str, UnverifiedAction] = {
    "account:update": UnverifiedAction.update_own_account,
    "password:change": UnverifiedAction.change_own_password,
    "sessions:read": UnverifiedAction.read_own_sessions,
    "sessions:revoke": UnverifiedAction.revoke_own_sessions,
}


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
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # Time-outs and keepalives (PostgreSQL only): together they bound how long a request
    # can wait for a database that stopped answering (docs/operations.md, "Faults").
    # The client gives up on a statement (and discards the connection) after
    # command_timeout_seconds; the server cancels a statement after statement_timeout_seconds
    # (kept below the client's, so a slow query is cancelled by the server and the
    # connection stays usable) and ends a transaction left idle after
    # idle_in_transaction_timeout_seconds. 0 leaves the server's setting (for PgBouncer,
    # which refuses startup parameters it does not know).
    command_timeout_seconds: float = Field(default=5.0, gt=0)
    statement_timeout_seconds: float = Field(default=4.0, ge=0)
    idle_in_transaction_timeout_seconds: float = Field(default=60.0, ge=0)
    # TCP keepalive on both ends of each connection: a peer that vanished is detected after
    # idle + interval * count seconds even on an idle pooled connection. 0 keeps the OS's.
    tcp_keepalives_idle_seconds: int = Field(default=30, ge=0)
    tcp_keepalives_interval_seconds: int = Field(default=10, ge=0)
    tcp_keepalives_count: int = Field(default=3, ge=0)
    pool_recycle_seconds: int = Field(default=1800, ge=-1)
    # PostgreSQL's max_parallel_workers_per_gather for Atrium's connections: 0 (no parallel
    # plans) because every query is an index-driven page or point lookup, where starting
    # workers costs more than it saves; -1 keeps the server's setting.
    parallel_workers_per_gather: int = Field(default=0, ge=-1)
    echo: bool = False
    auto_migrate: bool = True

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        example = (
            "postgresql+asyncpg://user:password@host:5432/database or "
            "sqlite+aiosqlite:///var/atrium.db"
        )
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(f"is not a database URL; write it as {example}") from None
        if url.drivername not in _SUPPORTED_DATABASES:
            raise ValueError(f"scheme {url.drivername}:// is not supported; use {example}")
        if url.drivername.startswith("postgresql") and not url.database:
            raise ValueError("names no database; add it after the port: …:5432/atrium")
        return value


class RedisSettings(BaseModel):
    """Redis for the shared principal cache and revocations; unset means in-process."""

    url: str | None = None
    key_prefix: str = "atrium:"
    socket_timeout_seconds: float = Field(default=1.0, gt=0)
    # After a Redis call fails at the connection level (refused, reset, no answer within the
    # socket time-out), the node skips Redis for this long and then probes it with one call
    # (a circuit breaker): a Redis that hangs costs a request at most one socket time-out.
    # 0 turns the breaker off (every call tries Redis).
    breaker_cooldown_seconds: float = Field(default=5.0, ge=0)


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
    unverified_allowed_actions: list[UnverifiedAction] = Field(
        default_factory=lambda: list(UnverifiedAction)
    )
    # Step-up (RFC 9470): sensitive operations need an authentication this recent.
    step_up_max_age_seconds: int = Field(default=600, ge=30, le=86_400)

    @field_validator("unverified_allowed_actions", mode="before")
    @classmethod
    def _read_legacy_actions(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [LEGACY_UNVERIFIED_ACTIONS.get(v, v) if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _check_lifetimes(self) -> AuthSettings:
        if self.refresh_token_idle_ttl_seconds > self.refresh_token_absolute_ttl_seconds:
            raise ValueError(
                f"{env_name('auth', 'refresh_token_idle_ttl_seconds')} must not exceed "
                f"{env_name('auth', 'refresh_token_absolute_ttl_seconds')}"
            )
        return self


class MfaSettings(BaseModel):
    """Second factors (TOTP, recovery codes), the login challenge, trusted devices and MFA
    required by role (docs/security.md)."""

    # Fernet keys (urlsafe base64 of 32 bytes) encrypting TOTP secrets at rest: the first
    # encrypts, every one decrypts (rotation: put the new key first, run
    # `atrium mfa rotate-keys`, then drop the old one). Empty: a key derived from the
    # signing key (HKDF-SHA256), which a signing-key rotation would then lose.
    encryption_keys: list[SecretStr] = []
    totp_issuer: str | None = Field(default=None, max_length=100)
    challenge_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    trusted_device_ttl_days: int = Field(default=30, ge=1, le=365)
    # Roles with `mfa_required` (and roles inheriting from them) need a second factor.
    role_requirement_enabled: bool = True
    enrollment_grace_period_seconds: int = Field(default=7 * 86_400, ge=0)


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
    # Requests in flight per worker process, open streams (SSE, WebSocket) included
    # (granian's backpressure): past it, new connections wait until one ends.
    max_concurrent_requests: int = Field(default=16_384, ge=64, le=1_000_000)
    # /docs, /redoc and /openapi.json. Unset: served, except in production.
    api_docs: bool | None = None


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
    """``/metrics``: on by default. In production it must be protected: a bearer token,
    or a listener of its own (``port``) that only the monitoring network reaches."""

    enabled: bool = True
    token: SecretStr | None = None
    # A separate listener for /metrics (``atrium serve`` starts it); the API port then
    # serves no /metrics at all.
    port: int | None = Field(default=None, ge=1, le=65_535)
    host: str = "127.0.0.1"


def metrics_exposure_problem(settings: Settings) -> str | None:
    """Why ``settings`` would publish unauthenticated metrics on the API port in
    production (one line naming the variables to set), or None when they do not."""
    m = settings.metrics
    if (
        settings.environment is Environment.production
        and m.enabled
        and m.token is None
        and m.port is None
    ):
        return (
            "production would serve /metrics to anyone on the API port: set "
            "ATRIUM_METRICS__TOKEN (bearer token), ATRIUM_METRICS__PORT (a separate "
            "listener), or ATRIUM_METRICS__ENABLED=false"
        )
    return None


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
            raise ValueError(
                f"{env_name('mail', 'lease_seconds')} must exceed "
                f"{env_name('mail', 'smtp_timeout_seconds')}"
            )
        for name in ("verify_email_path", "reset_password_path", "confirm_email_change_path"):
            if "{token}" not in getattr(self, name):
                raise ValueError(f"{env_name('mail', name)} must contain {{token}}")
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


class ApiKeySettings(BaseModel):
    """API keys (personal access tokens, ``atr_pat_...``)."""

    # The server secret of the keys' stored HMAC-SHA256. Required in production; changing
    # it invalidates every key. Elsewhere a development value is used when unset.
    hmac_secret: SecretStr | None = None
    max_per_user: int = Field(default=50, ge=1, le=1000)
    max_expires_in_days: int = Field(default=365, ge=1, le=3650)
    # last_used_at/last_used_ip are written at most this often per key.
    last_used_interval_seconds: float = Field(default=60.0, ge=0)

    def secret_bytes(self) -> bytes:
        """The HMAC secret as bytes (the development value when unset)."""
        if self.hmac_secret is None:
            return b"atrium-development-api-key-secret"
        return self.hmac_secret.get_secret_value().encode()


class WebAuthnSettings(BaseModel):
    """Passkeys (W3C WebAuthn Level 3): the relying party and its challenges."""

    # The relying party id (a registrable domain, e.g. "example.com"); unset: the host of
    # mail.link_base_url (the server's public address).
    rp_id: str | None = None
    # Shown by authenticators; unset: product_name.
    rp_name: str | None = None
    # Origins whose ceremonies are accepted (scheme://host[:port]); unset: the origin of
    # mail.link_base_url.
    origins: list[str] = []
    challenge_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    max_per_user: int = Field(default=20, ge=1, le=100)


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
            raise ValueError(
                f"{env_name('storage', 'backend')}=s3 requires {env_name('storage', 's3_bucket')}"
            )
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


class BrandingSettings(BaseModel):
    """How the hosted pages and the emails present the product (its name is
    ``product_name``)."""

    logo_url: str | None = Field(default=None, max_length=2048)
    # A CSS hex colour (#rgb or #rrggbb) for links, buttons and email accents.
    primary_color: str = Field(default="#1f6feb", pattern=r"^#(?:[0-9a-fA-F]{3}){1,2}$")
    support_email: str | None = Field(default=None, max_length=320)


class UiSettings(BaseModel):
    """The hosted pages (``/login``, ``/account`` ...) and the admin console (``/admin``)."""

    enabled: bool = True
    # Where /login sends a signed-in browser when no ``next`` is given or it is refused.
    default_redirect: str = "/account"
    # Absolute URLs (scheme://host[:port]) that ``next`` may point to besides Atrium's own
    # paths: the applications that send their users to Atrium's login page.
    allowed_redirect_origins: list[str] = []
    # The browser session's last_used_at is written at most this often (idle lifetime).
    session_touch_interval_seconds: int = Field(default=60, ge=1)


class EventSettings(BaseModel):
    """Domain events and their delivery to consumers (docs/events.md)."""

    max_attempts: int = Field(default=12, ge=1)
    backoff_base_seconds: float = Field(default=5.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # A consumer must finish one delivery within 80 % of the lease.
    lease_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=100, ge=1, le=1000)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Deliveries of a claimed batch handled at once by one dispatcher, each in its own
    # transaction (PostgreSQL; SQLite's single writer handles them one at a time).
    concurrency: int = Field(default=4, ge=1, le=32)
    # Embedded default: the API process dispatches events itself.
    worker_in_api: bool = True


class WebhookSettings(BaseModel):
    """Webhook endpoints and their deliveries (docs/events.md, "Webhooks")."""

    # About three days of retries: 30 s doubling to 6 h, ±20 % jitter, 22 attempts.
    max_attempts: int = Field(default=22, ge=1)
    backoff_base_seconds: float = Field(default=30.0, gt=0)
    backoff_max_seconds: float = Field(default=21600.0, gt=0)
    backoff_jitter: float = Field(default=0.2, ge=0, lt=1)
    disable_after_failures: int = Field(default=5, ge=1)
    rotation_overlap_seconds: int = Field(default=86400, ge=0, le=30 * 86400)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=15.0, gt=0)
    max_response_bytes: int = Field(default=65536, ge=0)
    allow_private_networks: bool = False
    allow_loopback: bool = False
    lease_seconds: float = Field(default=60.0, gt=0)
    batch_size: int = Field(default=50, ge=1, le=1000)
    # Attempts in flight at once per worker (their outcomes recorded in one transaction).
    concurrency: int = Field(default=10, ge=1, le=100)
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    max_endpoints: int = Field(default=100, ge=1)


ProviderKind = Literal["oidc", "github"]
PROVIDER_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
# Provider URLs: HTTPS (RFC 9700 §2.6), or plain HTTP on loopback only (tests).
PROVIDER_URL_PATTERN = (
    r"^(https://[^\s/?#]+|http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]+)?)(/\S*)?$"
)
ClaimField = Literal["email", "email_verified", "name", "picture"]
# RFC 6749 §3.3 scope-token.
ScopeToken = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[!#-\[\]-~]+$")]


class IdentityProviderSettings(BaseModel):
    """One identity provider of ``social.providers`` (docs/social-login.md). ``preset``
    ``google`` or ``microsoft`` fills in the issuer (Microsoft: of ``tenant``) and the
    scopes; ``kind: github`` uses GitHub's endpoints unless given."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=PROVIDER_ID_PATTERN)
    kind: ProviderKind = "oidc"
    preset: Literal["google", "microsoft"] | None = None
    display_name: str | None = Field(default=None, max_length=100)
    issuer: str | None = Field(default=None, max_length=512, pattern=PROVIDER_URL_PATTERN)
    tenant: str | None = Field(default=None, max_length=64)
    authorization_endpoint: str | None = Field(
        default=None, max_length=2048, pattern=PROVIDER_URL_PATTERN
    )
    token_endpoint: str | None = Field(default=None, max_length=2048, pattern=PROVIDER_URL_PATTERN)
    api_base_url: str | None = Field(default=None, max_length=2048, pattern=PROVIDER_URL_PATTERN)
    client_id: str = Field(min_length=1, max_length=255)
    client_secret: SecretStr | None = None
    scopes: list[ScopeToken] | None = Field(default=None, max_length=20)
    claim_mapping: dict[ClaimField, str] = {}
    trust_email_verified: bool = False
    enabled: bool = True


class SocialSettings(BaseModel):
    """Social login (OpenID Connect and GitHub identity providers), docs/social-login.md."""

    # Providers configured here (a JSON list); more can be added through the admin API.
    providers: list[IdentityProviderSettings] = []
    # Fernet keys (urlsafe base64 of 32 bytes) encrypting the client secrets stored by the
    # admin API: the first encrypts, all decrypt (rotation). Empty: a key file under
    # data_dir is made on first use outside production.
    secret_keys: list[SecretStr] = []
    # Base of the redirect URI registered at the providers:
    # <callback_base_url>/api/v1/auth/oauth/<provider id>/callback (default: mail.link_base_url).
    callback_base_url: str | None = Field(default=None, max_length=2048)
    # Exact redirect URIs of single-page and mobile apps that receive a login_code.
    app_redirect_uris: list[str] = []
    # Discovery documents and JWKS are cached this long; an unknown key id refetches the
    # JWKS at most every jwks_refresh_min_seconds.
    metadata_cache_seconds: int = Field(default=3600, ge=0)
    jwks_refresh_min_seconds: int = Field(default=10, ge=0)
    http_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Tolerated clock difference when checking an ID token's exp and iat.
    clock_skew_seconds: int = Field(default=60, ge=0, le=600)
    # An account created by social login takes the provider's picture (OIDC ``picture``,
    # GitHub ``avatar_url``) as its avatar: fetched by the worker's leader (job
    # social.import_avatars, every avatar_import_interval_seconds) within
    # http_timeout_seconds and avatars.max_bytes, re-encoded like an upload. The URL is
    # the provider's to choose, so the request follows the webhooks' SSRF rules: public
    # addresses only unless allowed here (tests and private providers).
    import_avatars: bool = True
    avatar_import_interval_seconds: float = Field(default=10.0, gt=0)
    avatar_allow_loopback: bool = False
    avatar_allow_private_networks: bool = False

    @model_validator(mode="after")
    def _unique_ids(self) -> SocialSettings:
        ids = [p.id for p in self.providers]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{env_name('social', 'providers')} has two providers of one id")
        return self


class JobSettings(BaseModel):
    """The platform's scheduled jobs (run by the worker's leader; docs/operations.md)."""

    # Remove soft-deleted accounts past accounts.deleted_retention_days.
    purge_deleted_interval_seconds: float = Field(default=3600.0, gt=0)


class RetentionSettings(BaseModel):
    """How long each kind of record is kept (docs/privacy.md, "Retention"; GDPR art.
    5(1)(e)). Days; 0 keeps that kind for good. Applied by the job ``retention.run``."""

    enabled: bool = True
    # How often the worker's leader applies the policies, and rows per transaction.
    interval_seconds: float = Field(default=3600.0, gt=0)
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    # The audit trail (security events of every account).
    audit_event_days: float = Field(default=365, ge=0)
    # After their end: sessions (expired or revoked) and refresh tokens, email tokens, API
    # keys, second-factor and passkey challenges, social sign-in tickets, trusted devices.
    ended_session_days: float = Field(default=30, ge=0)
    # After delivery: sent email (outbox), events every consumer received, webhook
    # deliveries (failed ones: after their creation).
    delivered_message_days: float = Field(default=30, ge=0)
    # After the account read them: inbox notices.
    read_notification_days: float = Field(default=180, ge=0)
    # The per-account daily activity rollup (the anonymous analytics rollups are kept).
    activity_days: float = Field(default=400, ge=0)


class ActivitySettings(BaseModel):
    """Activity tracking and analytics rollups (docs/analytics.md)."""

    # Record per account and day: first/last seen, requests, logins, sessions (off: the
    # buffer records nothing; login counts by method stop too).
    enabled: bool = True
    # How often each API process merges its in-memory counters into the daily rollups.
    flush_interval_seconds: float = Field(default=10.0, gt=0)
    # Bits of the client address kept (the rest is zeroed before anything is stored).
    ipv4_prefix: int = Field(default=24, ge=0, le=32)
    ipv6_prefix: int = Field(default=48, ge=0, le=128)
    # How often the worker's leader recomputes the analytics rollups (analytics.rollup),
    # and how many past days each pass recomputes (late flushes land within them).
    rollup_interval_seconds: float = Field(default=900.0, gt=0)
    rollup_lookback_days: int = Field(default=2, ge=1, le=60)
    # Retention cohorts: weeks followed after the registration week.
    retention_weeks: int = Field(default=12, ge=1, le=52)


class PrivacySettings(BaseModel):
    """The account's own data: export and deletion (docs/privacy.md; GDPR arts. 15, 17, 20)."""

    # A finished export can be downloaded this long, then it is purged.
    export_ttl_hours: int = Field(default=48, ge=1, le=24 * 30)
    # How often the worker's leader looks for requested exports to build.
    export_build_interval_seconds: float = Field(default=10.0, gt=0)
    # An export whose builder died is built again once it has run this long.
    export_stale_after_seconds: int = Field(default=3600, ge=60)
    # Days between DELETE /users/me and the erasure of the account; 0 erases at once.
    deletion_grace_days: int = Field(default=30, ge=0, le=365)
    # How often the worker's leader erases accounts whose grace period is over.
    deletion_interval_seconds: float = Field(default=3600.0, gt=0)


class RealtimeSettings(BaseModel):
    """Live notices: server-sent events and WebSocket (docs/events.md, "Real time")."""

    # A comment line (SSE) or a ping (WebSocket) this often keeps idle streams open
    # through proxies.
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    # A WebSocket must authenticate (first message) within this time.
    ws_auth_timeout_seconds: float = Field(default=10.0, gt=0)
    # On a finished broadcast each stream reads its new notices after a random delay of up
    # to this, so that thousands of streams do not query at the same instant.
    broadcast_jitter_seconds: float = Field(default=2.0, ge=0)


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
    # Applications built on Atrium to mount (atrium.apps.<name>, or a dotted module path);
    # docs/architecture.md, "Adding an application".
    apps: list[str] = Field(default_factory=list)

    database: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    auth: AuthSettings = AuthSettings()
    http: HttpSettings = HttpSettings()
    rate_limit: RateLimitSettings = RateLimitSettings()
    metrics: MetricsSettings = MetricsSettings()
    mail: MailSettings = MailSettings()
    rbac: RbacSettings = RbacSettings()
    accounts: AccountSettings = AccountSettings()
    api_keys: ApiKeySettings = ApiKeySettings()
    webauthn: WebAuthnSettings = WebAuthnSettings()
    storage: StorageSettings = StorageSettings()
    avatars: AvatarSettings = AvatarSettings()
    files: FileSettings = FileSettings()
    profiles: ProfileSettings = ProfileSettings()
    branding: BrandingSettings = BrandingSettings()
    ui: UiSettings = UiSettings()
    mfa: MfaSettings = MfaSettings()
    events: EventSettings = EventSettings()
    webhooks: WebhookSettings = WebhookSettings()
    realtime: RealtimeSettings = RealtimeSettings()
    jobs: JobSettings = JobSettings()
    activity: ActivitySettings = ActivitySettings()
    social: SocialSettings = SocialSettings()
    privacy: PrivacySettings = PrivacySettings()
    retention: RetentionSettings = RetentionSettings()

    @model_validator(mode="after")
    def _production_requires_explicit_choices(self) -> Settings:
        if self.environment is not Environment.production:
            return self
        # Every missing setting at once, so a deployment is fixed in one round.
        missing = []
        if self.database.url is None:
            missing.append(env_name("database", "url"))
        if self.auth.signing_key is None and self.auth.signing_key_file is None:
            missing.append(
                f"{env_name('auth', 'signing_key')} or {env_name('auth', 'signing_key_file')}"
            )
        if self.api_keys.hmac_secret is None:
            missing.append(env_name("api_keys", "hmac_secret"))
        if self.mail.smtp_host is None:
            # .eml files in a server's data folder would be lost mail.
            missing.append(env_name("mail", "smtp_host"))
        if "link_base_url" not in self.mail.model_fields_set:
            # Links to the development default would point at the reader's own machine.
            missing.append(env_name("mail", "link_base_url"))
        if missing:
            raise ValueError(f"{env_name('environment')}=production requires {', '.join(missing)}")
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
    def api_docs_enabled(self) -> bool:
        """Whether ``/docs``, ``/redoc`` and ``/openapi.json`` are served: ``http.api_docs``,
        else everywhere but in production (the API's map is no business of the public
        there; turn it on when it is)."""
        if self.http.api_docs is not None:
            return self.http.api_docs
        return self.environment is not Environment.production

    @property
    def effective_log_format(self) -> str:
        if self.log_format:
            return self.log_format
        return "console" if self.environment is Environment.development else "json"


# Values of these settings are never repeated in an error message (a URL may hold a
# password).
_SECRET_SETTING = re.compile(
    r"(url|password|secret|dsn|signing_key|verification_keys|secret_keys|providers|^token)$"
)


def _describe_validation_error(error: Mapping[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    msg = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    names = [p for p in loc if isinstance(p, str)]
    if not names or msg.startswith(ENV_PREFIX):
        return msg  # a rule across settings, worded with their variables already
    variable = env_name(*names)
    value = error.get("input")
    if isinstance(value, str) and not _SECRET_SETTING.search(names[-1]):
        return f"{variable}={value!r}: {msg}"
    return f"{variable}: {msg}"


def _describe_settings_error(exc: SettingsError, environ: Mapping[str, str]) -> str:
    """pydantic-settings reports a value that is not JSON by its group only: find the
    variable of that group whose value does not parse."""
    for name, value in environ.items():
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or "__" not in upper:
            continue
        try:
            json.loads(value)
        except ValueError:
            group = upper.removeprefix(ENV_PREFIX).split("__")[0].lower()
            if f'"{group}"' in str(exc) and _is_structured(upper):
                return (
                    f"{upper} is not valid JSON: write a JSON list or object, "
                    'e.g. ["https://app.example.com"]'
                )
    return f"a setting could not be read ({exc}): JSON lists and objects must be valid JSON"


def _is_structured(variable: str) -> bool:
    """Whether the setting of ``variable`` is a list or a mapping (read as JSON)."""
    model: Any = Settings
    for part in variable.removeprefix(ENV_PREFIX).lower().split("__"):
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return False
        model = field.annotation
    origin = getattr(model, "__origin__", None)
    return origin in (list, dict)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and ``.env``).

    Raises:
        StartupError: a value is invalid, or production lacks a required setting; the
            message names every variable at fault, on one line.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise StartupError("; ".join(_describe_validation_error(e) for e in exc.errors())) from None
    except SettingsError as exc:
        raise StartupError(_describe_settings_error(exc, os.environ)) from None


def _known_variables(model: type[BaseModel], prefix: str) -> Iterator[str]:
    for name, field in model.model_fields.items():
        variable = f"{prefix}{name.upper()}"
        yield variable  # a whole group can be given as one JSON object, too
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _known_variables(annotation, f"{variable}__")


def known_variables() -> frozenset[str]:
    """Every ``ATRIUM_*`` variable Atrium reads (settings and whole groups)."""
    return frozenset(_known_variables(Settings, ENV_PREFIX))


def unknown_variables(names: list[str] | None = None) -> list[str]:
    """``ATRIUM_*`` variables of the environment and ``.env`` that no setting reads (a typo
    such as ``ATRIUM_DATABASE_URL``, a setting under the wrong group), each with the
    likely intended variable: ``"ATRIUM_DATABASE_URL (did you mean ATRIUM_DATABASE__URL?)"``.
    The variables of Atrium's tooling (:data:`TOOLING_PREFIXES`, :data:`TOOLING_VARIABLES`)
    and ``<setting>_FILE`` (read by the container entrypoint) are left alone."""
    if names is None:
        names = list(os.environ)
        env_file = Path(".env")
        if env_file.is_file():
            from dotenv import dotenv_values

            names += list(dotenv_values(env_file))
    known = known_variables()
    out = []
    for name in sorted({n.upper() for n in names}):
        if not name.startswith(ENV_PREFIX) or name.startswith(TOOLING_PREFIXES):
            continue
        # NAME_FILE: the container entrypoint reads the value of NAME from that file.
        if name in known or name in TOOLING_VARIABLES or name.removesuffix("_FILE") in known:
            continue
        out.append(f"{name}{_suggest(name, known)}")
    return out


def _suggest(name: str, known: frozenset[str]) -> str:
    leaf = name.removeprefix(ENV_PREFIX).replace("__", "_")
    # The same setting under another group, or with one underscore instead of two.
    same = sorted(k for k in known if k.removeprefix(ENV_PREFIX).replace("__", "_") == leaf)
    if not same:
        tail = name.rpartition("__")[2]
        same = sorted(k for k in known if "__" in name and k.rpartition("__")[2] == tail)
    if not same:
        same = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.8)
    return f" (did you mean {' or '.join(same)}?)" if same else ""


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call.

    Raises:
        StartupError: see :func:`load_settings`.
    """
    return load_settings()
