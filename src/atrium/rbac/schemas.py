"""Request and response bodies of roles."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from atrium.core.schemas import RequestModel

ROLE_NAME = r"^[a-z][a-z0-9_-]{0,63}$"


class RoleRead(BaseModel):
    """A role: its own permissions, the roles it inherits from, and the permissions it
    adds up to with inheritance."""

    name: str
    description: str | None
    is_builtin: bool
    permissions: list[str]
    parents: list[str]
    effective_permissions: list[str]
    mfa_required: bool = Field(description="This role requires its holders to use MFA.")
    effective_mfa_required: bool = Field(
        description="Holders must use a second factor: this role or a role it inherits from "
        "requires it."
    )
    created_at: datetime
    updated_at: datetime


class RoleCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "support",
                    "description": "Helps users with their accounts.",
                    "permissions": ["sessions:revoke"],
                    "parents": ["moderator"],
                }
            ]
        }
    )

    name: str = Field(pattern=ROLE_NAME, description="Lower-case; never changes.")
    description: str | None = Field(default=None, max_length=255)
    permissions: list[str] = Field(default_factory=list, max_length=100)
    parents: list[str] = Field(default_factory=list, max_length=20)
    mfa_required: bool = False


class RoleUpdate(RequestModel):
    """Fields to change; ``permissions`` and ``parents`` replace the current lists."""

    description: str | None = Field(default=None, max_length=255)
    permissions: list[str] | None = Field(default=None, max_length=100)
    parents: list[str] | None = Field(default=None, max_length=20)
    mfa_required: bool | None = None
