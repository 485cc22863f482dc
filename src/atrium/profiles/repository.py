"""Every query of profiles and preferences."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.models import Profile, User, UserPreferences, UserStatus
from atrium.profiles.exceptions import UsernameTaken
from atrium.profiles.schemas import Visibility

PUBLIC = Visibility.public.value


@dataclass(frozen=True)
class AvatarOwner:
    """What decides who may fetch an account's avatar."""

    visibility: str
    avatar_version: str | None


class ProfileRepository:
    def __init__(self, db: AsyncSession) -> None:
        self.db = db

    async def get(self, user_id: uuid.UUID) -> Profile | None:
        return await self.db.get(Profile, user_id)

    async def visible_by_username(self, username: str) -> tuple[User, Profile | None] | None:
        """The active, not deleted account with ``username`` and its profile row (if any)."""
        row = (
            await self.db.execute(
                select(User, Profile)
                .outerjoin(Profile, Profile.user_id == User.id)
                .where(
                    User.username == username,
                    User.status == UserStatus.active.value,
                    User.deleted_at.is_(None),
                )
            )
        ).first()
        return (row[0], row[1]) if row is not None else None

    async def avatar_owner(self, user_id: uuid.UUID) -> AvatarOwner | None:
        """The profile visibility and current avatar of an active, not deleted account."""
        row = (
            await self.db.execute(
                select(Profile.visibility, Profile.avatar_version)
                .join(User, User.id == Profile.user_id)
                .where(
                    Profile.user_id == user_id,
                    User.status == UserStatus.active.value,
                    User.deleted_at.is_(None),
                )
            )
        ).first()
        return AvatarOwner(row[0], row[1]) if row is not None else None

    async def add(self, profile: Profile) -> Profile:
        self.db.add(profile)
        return profile

    async def get_or_add(self, user_id: uuid.UUID, now: datetime) -> Profile:
        """The profile row of ``user_id``, created (not yet flushed) with the defaults
        (every field public) if absent."""
        profile = await self.get(user_id)
        if profile is None:
            profile = await self.add(
                Profile(
                    user_id=user_id,
                    visibility=PUBLIC,
                    location_visibility=PUBLIC,
                    website_visibility=PUBLIC,
                    pronouns_visibility=PUBLIC,
                    updated_at=now,
                )
            )
        return profile

    async def flush_username(self) -> None:
        """Flush a username change; the unique constraint decides collisions.

        Raises:
            UsernameTaken: 409, another account has the username.
        """
        try:
            await self.db.flush()
        except IntegrityError as exc:
            raise UsernameTaken("This username is taken.") from exc

    async def avatar_versions(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
        rows = await self.db.execute(
            select(Profile.user_id, Profile.avatar_version).where(
                Profile.user_id.in_(user_ids), Profile.avatar_version.is_not(None)
            )
        )
        return {uid: version for uid, version in rows if version is not None}

    async def get_preferences(self, user_id: uuid.UUID) -> UserPreferences | None:
        return await self.db.get(UserPreferences, user_id)

    async def add_preferences(self, prefs: UserPreferences) -> None:
        self.db.add(prefs)
