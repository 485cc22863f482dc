"""The pieces of an owner's deletion that sign-in needs too: the cancel token and the
error a sign-in meets during the grace period (docs/privacy.md)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.opaque import new_token, token_digest
from atrium.errors import AppError
from atrium.models import EmailToken, EmailTokenPurpose, User
from atrium.verification.repository import EmailTokenRepository

CANCEL_API = "/api/v1/auth/deletion/cancel"
CANCEL_PAGE = "/cancel-deletion?token={token}"
SIGN_IN_TICKET_SECONDS = 900


class DeletionPending(AppError):
    """The password was right, but the owner asked for the account's deletion: the only
    thing it can do is cancel it (``POST /api/v1/auth/deletion/cancel`` with
    ``cancel_token``, valid 15 minutes). The token is committed although the request
    fails."""

    status = 403
    code = "account_deletion_pending"
    title = "The account is scheduled for deletion"
    preserve_changes = True

    def __init__(self, due_at: datetime, cancel_token: str) -> None:
        super().__init__(
            f"The account will be erased at {due_at.isoformat()}. To keep it, POST "
            f"{{'token': cancel_token}} to {CANCEL_API}, then sign in again.",
            extensions={
                "deletion_due_at": due_at.isoformat(),
                "cancel_token": cancel_token,
                "cancel_url": CANCEL_API,
            },
        )
        self.cancel_token = cancel_token


async def issue_cancel_token(db: AsyncSession, user: User, now: datetime, ttl_seconds: int) -> str:
    """A new single-use token that cancels ``user``'s deletion (stored as its SHA-256)."""
    raw = new_token()
    await EmailTokenRepository(db).add(
        EmailToken(
            id=uuid.uuid4(),
            user_id=user.id,
            purpose=EmailTokenPurpose.cancel_deletion.value,
            token_hash=token_digest(raw),
            email=user.email,
            created_at=now,
            expires_at=now + timedelta(seconds=ttl_seconds),
        )
    )
    return raw


async def claim_cancel_token(db: AsyncSession, raw: str, now: datetime) -> uuid.UUID | None:
    """The account whose deletion ``raw`` cancels (the token is used up), or None when it
    is unknown, used or expired."""
    if not raw or len(raw) > 256:
        return None
    claimed = await EmailTokenRepository(db).claim(
        token_digest(raw), EmailTokenPurpose.cancel_deletion.value, now
    )
    return claimed[0] if claimed else None
