"""Request and response bodies of webhook administration."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from atrium.core.schemas import RequestModel

EXAMPLE_SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" + "c0ffee0Atrium="  # nosec B105
_ID = "0b6a3a8e-8d8f-4f7e-9b0e-5c3f1d2a7e11"
_READ: dict[str, Any] = {
    "id": _ID,
    "url": "https://hooks.example.com/atrium",
    "description": "CRM sync",
    "event_types": ["user.*", "role.granted"],
    "enabled": True,
    "disabled_reason": None,
    "disabled_at": None,
    "consecutive_failures": 0,
    "previous_secret_expires_at": None,  # nosec B105 - an OpenAPI example
    "created_at": "2026-12-02T09:00:00Z",
    "updated_at": "2026-12-02T09:00:00Z",
}

EventTypes = list[str]
_TYPES = Field(
    min_length=1,
    max_length=100,
    description="Catalogue names (docs/events.md) or patterns: `user.*` (every `user.…` "
    "type), `*` (every type).",
)


class WebhookCreate(RequestModel):
    """A new endpoint: where to send which events."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.example.com/atrium",
                    "event_types": ["user.*"],
                    "description": "CRM sync",
                }
            ]
        },
    )

    url: str = Field(min_length=1, max_length=2048, description="An http(s) URL, public.")
    event_types: EventTypes = _TYPES
    description: str | None = Field(default=None, max_length=500)
    enabled: bool = True


class WebhookUpdate(RequestModel):
    """Fields to change; absent ones are kept. Enabling a disabled endpoint clears its
    failure count."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"enabled": True}]})

    url: str | None = Field(default=None, min_length=1, max_length=2048)
    event_types: EventTypes | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class WebhookRead(BaseModel):
    """One endpoint; never its signing secret."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [_READ]})

    id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(
        description="Why Atrium disabled it (consecutive failed deliveries), or null."
    )
    disabled_at: datetime | None
    consecutive_failures: int = Field(
        description="Deliveries that failed for good since the last successful one."
    )
    previous_secret_expires_at: datetime | None = Field(
        description="During a rotation: until when the previous secret still signs."
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookRead):
    """The endpoint with its signing secret: shown this once and never again."""

    model_config = ConfigDict(json_schema_extra={"examples": [_READ | {"secret": EXAMPLE_SECRET}]})

    secret: str = Field(
        description="`whsec_` + base64 of 32 bytes: the Standard Webhooks signing key. "
        "Shown once; only an encrypted copy is kept."
    )


class AttemptRead(BaseModel):
    """One HTTP attempt of a delivery."""

    model_config = ConfigDict(from_attributes=True)

    attempt: int
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status; null without one.")
    latency_ms: int
    response_excerpt: str | None = Field(description="The first characters of the answer.")
    error: str | None


class DeliveryRead(BaseModel):
    """One event sent (or to be sent) to an endpoint, with every attempt so far."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c3c1e-5d2b-4c55-9a36-3e3cd1a6d0b1",
                    "event_id": "9d8b8f64-1f0e-4bfa-8a0e-2c1c2b9ad001",
                    "event_type": "user.created",
                    "status": "delivered",
                    "attempts": 1,
                    "next_attempt_at": "2026-12-02T09:00:00Z",
                    "created_at": "2026-12-02T09:00:00Z",
                    "delivered_at": "2026-12-02T09:00:01Z",
                    "last_error": None,
                    "attempt_log": [
                        {
                            "attempt": 1,
                            "attempted_at": "2026-12-02T09:00:00Z",
                            "status_code": 204,
                            "latency_ms": 87,
                            "response_excerpt": None,
                            "error": None,
                        }
                    ],
                }
            ]
        }
    )

    id: uuid.UUID
    event_id: uuid.UUID = Field(description="Sent as `webhook-id`.")
    event_type: str
    status: str = Field(description="`pending`, `delivering`, `delivered` or `failed`.")
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    delivered_at: datetime | None
    last_error: str | None
    attempt_log: list[AttemptRead]


class TestResult(BaseModel):
    """The test message queued for the endpoint (see its delivery log for the outcome)."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"delivery_id": "6f1c3c1e-5d2b-4c55-9a36-3e3cd1a6d0b1"}]}
    )

    delivery_id: uuid.UUID
