"""Every query of the users domain."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.auth.exceptions import EmailTaken
from atrium.models import User


class UserRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def add(self, user: User) -> User:
        """Insert ``user``; the unique index on ``email_normalized`` decides duplicates.

        Raises:
            EmailTaken: another account already has this email (no check-then-insert:
                concurrent registrations of one email all reach the index).
        """
        self.db.add(user)
        try:
            await self.db.flush()
        except IntegrityError as exc:
            raise EmailTaken("An account with this email already exists.") from exc
        return user

    async def get(self, user_id: uuid.UUID) -> User | None:
        return await self.db.get(User, user_id)

    async def get_by_email_key(self, email_key: str) -> User | None:
        return (
            await self.db.execute(select(User).where(User.email_normalized == email_key))
        ).scalar_one_or_none()

    async def record_login(
        self, user_id: uuid.UUID, now: datetime, new_password_hash: str | None
    ) -> None:
        values: dict[str, object] = {"last_login_at": now}
        if new_password_hash is not None:
            values["password_hash"] = new_password_hash
        await self.db.execute(update(User).where(User.id == user_id).values(**values))

    async def delete(self, user_id: uuid.UUID) -> None:
        await self.db.execute(delete(User).where(User.id == user_id))
