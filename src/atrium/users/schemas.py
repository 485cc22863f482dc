"""Request and response bodies of the users domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from atrium.core.schemas import RequestModel


class UserRead(BaseModel):
    """The account as its owner sees it. Never carries a password or token hash."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "0b6f3c1e-7f5e-4a4e-9d8a-2f1f1c1b2a3d",
                    "email": "ada@example.com",
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


class UserUpdate(RequestModel):
    """Fields the owner may change here (email changes need verification: not here)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"full_name": "Ada King"}]})

    full_name: str | None = Field(default=None, max_length=200)


class PasswordChange(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"current_password": "old correct horse", "new_password": "new battery staple"}
            ]
        }
    )

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class AccountDeletion(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"password": "correct horse battery"}]}
    )

    password: str = Field(max_length=1024)


class SessionRead(BaseModel):
    """A login session of the signed-in user."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None
    current: bool
