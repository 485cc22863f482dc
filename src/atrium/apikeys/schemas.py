"""Request and response bodies of the API key domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atrium.core.schemas import RequestModel

EXAMPLE_KEY = "atr_pat_" + "3xAmPle" * 6 + "x" + "0Ab1Cd"  # nosec B105

_READ_EXAMPLE: dict[str, Any] = {
    "id": "5d7c1f0e-2b8a-4c1e-9f3a-6b2d8e4c1a90",
    "name": "CI deploy",
    "prefix": EXAMPLE_KEY[:16],
    "scopes": ["users:read"],
    "created_at": "2026-12-02T09:00:00Z",
    "expires_at": "2027-03-02T09:00:00Z",
    "last_used_at": "2026-12-02T09:30:00Z",
    "last_used_ip": "203.0.113.7",
}


class ApiKeyCreate(RequestModel):
    """A new key: a name for its owner, the permissions it may use, and its lifetime."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "CI deploy", "scopes": ["users:read"], "expires_in_days": 90}]
        },
    )

    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="Permission names (`resource:action`) the key may use, each held by the "
        "owner. The key acts with these ∩ the owner's current permissions. Empty: only the "
        "owner's own non-sensitive routes (`GET /users/me`, profile, files).",
    )
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=3650,
        description="Lifetime in days; at most `api_keys.max_expires_in_days` (the default).",
    )


class ApiKeyRead(BaseModel):
    """One API key as listed: never the key itself, only its first characters."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_READ_EXAMPLE]})

    id: uuid.UUID
    name: str
    prefix: str = Field(description="The first characters of the key, to tell keys apart.")
    scopes: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None = Field(
        description="Last use, recorded at most once a minute "
        "(`api_keys.last_used_interval_seconds`)."
    )
    last_used_ip: str | None


class ApiKeyCreated(ApiKeyRead):
    """The new key, with the key itself: shown this once and never again."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [_READ_EXAMPLE | {"key": EXAMPLE_KEY, "last_used_at": None}]}
    )

    key: str = Field(
        description="`atr_pat_` + 43 base62 characters + a 6-character CRC32 checksum. Send "
        "it as `Authorization: Bearer <key>`. Shown once: only its HMAC is stored."
    )
