"""Every query of the passkeys domain: credentials and ceremony challenges."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import Passkey, User, WebAuthnChallenge


class PasskeyRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    # --- challenges --------------------------------------------------------------------

    async def add_challenge(self, challenge: WebAuthnChallenge, now: datetime) -> None:
        """Store ``challenge`` and drop expired ones (so the table stays small without a
        scheduled job)."""
        await self.db.execute(delete(WebAuthnChallenge).where(WebAuthnChallenge.expires_at <= now))
        self.db.add(challenge)
        await self.db.flush()

    async def claim_challenge(
        self,
        purpose: str,
        now: datetime,
        *,
        challenge_id: uuid.UUID | None = None,
        value: bytes | None = None,
        user_id: uuid.UUID | None = None,
    ) -> WebAuthnChallenge | None:
        """Take a live challenge of ``purpose`` by id or by value (and of ``user_id`` when
        given): one DELETE, so of concurrent claims exactly one gets it (single use)."""
        conditions = [WebAuthnChallenge.purpose == purpose, WebAuthnChallenge.expires_at > now]
        if challenge_id is not None:
            conditions.append(WebAuthnChallenge.id == challenge_id)
        if value is not None:
            conditions.append(WebAuthnChallenge.challenge == value)
        if user_id is not None:
            conditions.append(WebAuthnChallenge.user_id == user_id)
        row = (
            await self.db.execute(
                delete(WebAuthnChallenge)
                .where(*conditions)
                .returning(
                    WebAuthnChallenge.id,
                    WebAuthnChallenge.challenge,
                    WebAuthnChallenge.user_id,
                    WebAuthnChallenge.expires_at,
                )
            )
        ).first()
        if row is None:
            return None
        return WebAuthnChallenge(
            id=row[0], purpose=purpose, challenge=row[1], user_id=row[2], expires_at=row[3]
        )

    # --- credentials -------------------------------------------------------------------

    async def add(self, passkey: Passkey) -> bool:
        """Insert ``passkey``; False when its credential id is already registered (the
        unique index decides, in a savepoint)."""
        try:
            async with self.db.begin_nested():
                self.db.add(passkey)
                await self.db.flush()
        except IntegrityError:
            return False
        return True

    async def count_of(self, user_id: uuid.UUID) -> int:
        count = await self.db.scalar(
            select(func.count()).select_from(Passkey).where(Passkey.user_id == user_id)
        )
        return int(count or 0)

    async def list_of(self, user_id: uuid.UUID) -> list[Passkey]:
        """The passkeys of ``user_id``, newest first."""
        return list(
            (
                await self.db.execute(
                    select(Passkey)
                    .where(Passkey.user_id == user_id)
                    .order_by(Passkey.created_at.desc(), Passkey.id)
                )
            ).scalars()
        )

    async def get_own(self, user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey | None:
        return (
            await self.db.execute(
                select(Passkey).where(Passkey.id == passkey_id, Passkey.user_id == user_id)
            )
        ).scalar_one_or_none()

    async def delete_own(self, user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey | None:
        """Delete one passkey of ``user_id``; it as it was, or None."""
        passkey = await self.get_own(user_id, passkey_id)
        if passkey is None:
            return None
        await self.db.delete(passkey)
        await self.db.flush()
        return passkey

    async def with_owner(self, credential_id: bytes) -> tuple[Passkey, User] | None:
        """The passkey of ``credential_id`` and its account (one query)."""
        row = (
            await self.db.execute(
                select(Passkey, User)
                .join(User, User.id == Passkey.user_id)
                .where(Passkey.credential_id == credential_id)
            )
        ).first()
        return (row[0], row[1]) if row else None

    async def record_use(
        self, passkey_id: uuid.UUID, old_count: int, new_count: int, now: datetime
    ) -> bool:
        """Move the signature counter from ``old_count`` to ``new_count`` (and
        ``last_used_at``), only if it has not moved meanwhile: of two concurrent uses of
        one counter value, one wins. False when it had moved."""
        result = await self.db.execute(
            update(Passkey)
            .where(Passkey.id == passkey_id, Passkey.sign_count == old_count)
            .values(sign_count=new_count, last_used_at=now)
            .returning(Passkey.id)
        )
        return result.first() is not None
