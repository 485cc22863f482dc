"""Request and response models of notifications."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from atrium.core.schemas import RequestModel
from atrium.profiles.schemas import Notifications

# The categories of the notification preferences (profiles): security, account, ...
CATEGORIES: tuple[str, ...] = tuple(Notifications.model_fields)
Category = Literal["security", "account", "mentions", "product_updates"]


class NotificationRead(BaseModel):
    """One notice of the signed-in account's inbox."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0b8f6a52-3c1e-4d59-9a57-2a4f3a0e5f10",
                    "category": "security",
                    "title": "Your password was changed",
                    "body": "If this was not you, reset your password now.",
                    "link": "/account",
                    "created_at": "2026-12-02T06:00:00Z",
                    "read_at": None,
                    "read": False,
                }
            ]
        },
    )

    id: uuid.UUID
    category: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None
    read: bool = False

    @model_validator(mode="after")
    def _read(self) -> NotificationRead:
        self.read = self.read_at is not None
        return self


class UnreadCount(BaseModel):
    """How many notices of the inbox are unread."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"count": 3}]})

    count: int = Field(ge=0)


class MarkedRead(BaseModel):
    """How many notices ``read-all`` marked read."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"updated": 3}]})

    updated: int = Field(ge=0)


# Text without control characters; a link is a path on Atrium or an http(s) URL.
NO_CONTROL = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
NO_CONTROL_BUT_NEWLINE = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$"
LINK = "^(/|https?://)[^\\s\\x00-\\x1f\\x7f-\\x9f]*$"


class BroadcastCreate(RequestModel):
    """An administrator's notice to every active account (``all``) or to the holders of
    ``role`` (``audience: role``)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "audience": "all",
                    "category": "product_updates",
                    "title": "Scheduled maintenance",
                    "body": "Sign-in will be unavailable on Sunday from 02:00 to 03:00 UTC.",
                    "link": "https://status.example.com",
                }
            ]
        },
    )

    audience: Literal["all", "role"]
    role: str | None = Field(default=None, min_length=1, max_length=64, pattern=NO_CONTROL)
    category: Category = "product_updates"
    title: str = Field(min_length=1, max_length=200, pattern=NO_CONTROL)
    body: str = Field(min_length=1, max_length=2000, pattern=NO_CONTROL_BUT_NEWLINE)
    link: str | None = Field(default=None, max_length=2048, pattern=LINK)

    @model_validator(mode="after")
    def _role_given(self) -> BroadcastCreate:
        if (self.audience == "role") != (self.role is not None):
            raise ValueError("role is required with audience 'role' and only then")
        return self


class BroadcastRead(BaseModel):
    """A broadcast as accepted: its notices are written by the worker in batches."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    audience: str
    role: str | None = None
    category: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    completed_at: datetime | None
