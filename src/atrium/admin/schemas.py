"""Request and response bodies of account administration."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from atrium.core.schemas import RequestModel


class AccountStatus(StrEnum):
    active = "active"
    suspended = "suspended"
    deleted = "deleted"


class UserSort(StrEnum):
    """Sort key; a leading ``-`` means descending. ``last_login_at``: accounts that never
    logged in come last in both directions."""

    created_at_asc = "created_at"
    created_at_desc = "-created_at"
    email_asc = "email"
    email_desc = "-email"
    last_login_at_asc = "last_login_at"
    last_login_at_desc = "-last_login_at"


class AdminUserRead(BaseModel):
    """An account as an administrator sees it. Never carries a password or token hash."""

    id: uuid.UUID
    email: str
    username: str | None
    full_name: str | None
    status: AccountStatus
    email_verified: bool
    profile_verified: bool
    roles: list[str]
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None
    deleted_at: datetime | None


class AdminUserUpdate(RequestModel):
    """Fields an administrator may change. Suspending revokes every session at once."""

    status: Literal["active", "suspended"] | None = None
    email_verified: StrictBool | None = None
    profile_verified: StrictBool | None = Field(default=None, description="The verified badge.")
    full_name: str | None = Field(default=None, max_length=200)


class SessionsRevoked(BaseModel):
    revoked: int = Field(description="Number of live sessions that were revoked.")


class BulkAction(StrEnum):
    suspend = "suspend"
    activate = "activate"
    delete = "delete"
    add_role = "add_role"
    remove_role = "remove_role"


class BulkRequest(RequestModel):
    """One action on up to 1000 accounts, all or nothing."""

    model_config = ConfigDict(
        json_schema_extra={
            # `role` with the role actions, and only with them (what the validator checks).
            "anyOf": [
                {
                    "properties": {
                        "action": {"enum": ["add_role", "remove_role"]},
                        "role": {"type": "string"},
                    },
                    "required": ["role"],
                },
                {
                    "properties": {
                        "action": {"enum": ["suspend", "activate", "delete"]},
                        "role": {"type": "null"},
                    }
                },
            ]
        }
    )

    ids: list[uuid.UUID] = Field(min_length=1, max_length=1000)
    action: BulkAction
    role: str | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _role_iff_role_action(self) -> BulkRequest:
        needs_role = self.action in (BulkAction.add_role, BulkAction.remove_role)
        if needs_role and not self.role:
            raise ValueError("role is required for add_role and remove_role")
        if not needs_role and self.role is not None:
            raise ValueError("role is only accepted for add_role and remove_role")
        return self


class BulkItemResult(BaseModel):
    id: uuid.UUID
    ok: bool
    changed: bool = False
    code: str | None = None
    detail: str | None = None


class BulkResponse(BaseModel):
    action: BulkAction
    results: list[BulkItemResult]
