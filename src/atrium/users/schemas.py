"""Request and response bodies of the users domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from atrium.core.examples import EXAMPLE_EMAIL, EXAMPLE_NEW_PASSWORD, EXAMPLE_PASSWORD
from atrium.core.schemas import POLICY_MARK, RequestModel
from atrium.mail.schemas import LocaleField


class UserRead(BaseModel):
    """The account as its owner sees it. Never carries a password or token hash."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6f3c1e-7f5e-4a4e-9d8a-2f1f1c1b2a3d",
                    "email": EXAMPLE_EMAIL,
                    "full_name": "Ada Lovelace",
                    "status": "active",
                    "email_verified": False,
                    "is_superuser": False,
                    "roles": ["user"],
                    "created_at": "2026-11-21T09:00:00Z",
                    "updated_at": "2026-11-21T09:00:00Z",
                    "last_login_at": "2026-11-21T09:05:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    email: str
    full_name: str | None
    status: str
    email_verified: bool
    is_superuser: bool = Field(description="Holds the `superadmin` role.")
    roles: list[str] = Field(default_factory=list, description="Roles held directly.")
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    locale: str | None = None


class UserUpdate(RequestModel):
    """Fields the owner may change here (email changes need verification: not here)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"full_name": "Ada King"}]})

    full_name: str | None = Field(default=None, max_length=200)
    locale: LocaleField = None


class PasswordChange(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current_password": EXAMPLE_PASSWORD, "new_password": EXAMPLE_NEW_PASSWORD}
            ]
        }
    )

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024, json_schema_extra={POLICY_MARK: True})


class AccountDeletion(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"password": EXAMPLE_PASSWORD}]})

    password: str = Field(max_length=1024)


class DeletionScheduled(BaseModel):
    """The answer to ``DELETE /users/me``: when the account will be erased (ISO 8601 UTC),
    or null when it was erased at once (grace period 0)."""

    deletion_due_at: datetime | None


class DeletionCancel(RequestModel):
    """The token of the emailed cancel link, or ``cancel_token`` of a sign-in's
    ``account_deletion_pending`` problem."""

    token: str = Field(min_length=1, max_length=256)


class SessionRead(BaseModel):
    """A login session, with how strongly it was authenticated: ``aal`` (NIST SP 800-63B
    assurance level, 1 or 2), ``amr`` (RFC 8176 methods) and ``auth_time`` (the last
    active authentication)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None
    current: bool
    aal: Literal[1, 2]
    amr: list[str]
    auth_time: datetime

    @classmethod
    def of(cls, session: Any, *, current: bool) -> SessionRead:
        """From an ``AuthSession`` row."""
        return cls(
            id=session.id,
            created_at=session.created_at,
            last_used_at=session.last_used_at,
            expires_at=session.expires_at,
            user_agent=session.user_agent,
            ip_address=session.ip_address,
            current=current,
            aal=session.aal,
            amr=list(session.amr),
            auth_time=session.auth_time,
        )
