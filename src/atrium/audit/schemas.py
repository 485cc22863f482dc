"""Response bodies of the audit trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventRead(BaseModel):
    """One audit event as an administrator sees it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: datetime
    actor_type: str
    actor_id: uuid.UUID | None
    action: str
    target_type: str | None
    target_id: str | None
    ip_address: str | None
    user_agent: str | None
    request_id: str | None
    changes: dict[str, Any] | None
    details: dict[str, Any] | None


class SecurityEventRead(BaseModel):
    """One security event of the signed-in user's own account. The IP address and user
    agent are shown only for events the user caused themselves (not an admin's)."""

    id: uuid.UUID
    occurred_at: datetime
    action: str
    by_self: bool
    ip_address: str | None
    user_agent: str | None
    details: dict[str, Any] | None
