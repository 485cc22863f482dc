"""Creating accounts: the one path for self-registration and for the first admin."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import User, UserStatus
from atrium.models.role import USER
from atrium.users.email import NormalizedEmail
from atrium.users.grants import grant_to_new_account
from atrium.users.repository import UserRepository


async def create_account(
    db: AsyncSession,
    email: NormalizedEmail,
    password_hash: str,
    now: datetime,
    *,
    locale: str | None = None,
    email_verified_at: datetime | None = None,
) -> User:
    """Insert an active account holding the built-in ``user`` role (flushed, so the
    database has decided on the address).

    ``email`` is already normalised (:func:`atrium.users.email.normalize_email`) and
    ``password_hash`` already checked against the policy and hashed.

    Raises:
        EmailTaken: 409, another account has this (case-insensitive) address.
    """
    user = User(
        id=uuid.uuid4(),
        email=email.address,
        email_normalized=email.key,
        password_hash=password_hash,
        status=UserStatus.active.value,
        email_verified_at=email_verified_at,
        created_at=now,
        updated_at=now,
        locale=locale,
    )
    await UserRepository(db).add(user)
    await grant_to_new_account(db, user, USER)
    return user
