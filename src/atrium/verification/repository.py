"""Every query of the account email flows: single-use email tokens and email changes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import EmailToken, User
from atrium.users.exceptions import EmailTaken


class EmailTokenRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, token: EmailToken) -> None:
        self.db.add(token)
        await self.db.flush()

    async def discard_unused(self, user_id: uuid.UUID, purpose: str) -> None:
        """Delete the unused tokens of ``purpose`` of ``user_id`` (a newer one replaces them)."""
        await self.db.execute(
            delete(EmailToken).where(
                EmailToken.user_id == user_id,
                EmailToken.purpose == purpose,
                EmailToken.used_at.is_(None),
            )
        )

    async def claim(
        self, token_hash: bytes, purpose: str, now: datetime
    ) -> tuple[uuid.UUID, str] | None:
        """Atomically use a token: ``(user_id, email)`` when it exists, has ``purpose``, is
        unused and unexpired; None otherwise. Of concurrent claims of one token, one wins
        (``UPDATE … WHERE used_at IS NULL RETURNING``)."""
        row = (
            await self.db.execute(
                update(EmailToken)
                .where(
                    EmailToken.token_hash == token_hash,
                    EmailToken.purpose == purpose,
                    EmailToken.used_at.is_(None),
                    EmailToken.expires_at > now,
                )
                .values(used_at=now)
                .returning(EmailToken.user_id, EmailToken.email)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def set_email(self, user: User, address: str, key: str, now: datetime) -> None:
        """Give ``user`` a new, verified address.

        Raises:
            EmailTaken: another account has it (the unique index decides).
        """
        user.email = address
        user.email_normalized = key
        user.email_verified_at = now
        user.updated_at = now
        try:
            await self.db.flush()
        except IntegrityError as exc:
            raise EmailTaken("Another account already uses this email address.") from exc

    async def delete_expired(self, before: datetime) -> int:
        """Delete the tokens that expired before ``before`` (used or not); how many."""
        result = await self.db.execute(
            delete(EmailToken).where(EmailToken.expires_at < before).returning(EmailToken.id)
        )
        return len(result.all())
