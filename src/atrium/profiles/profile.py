"""The rules of profiles: the owner's fields and privacy settings, the public view and
the verified badge."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.auth.principal import Principal
from atrium.context import AppContext
from atrium.models import Profile, User
from atrium.profiles.cache import ProfileRecord, cached_record, forget_profiles, store_record
from atrium.profiles.exceptions import ProfileNotFound
from atrium.profiles.repository import ProfileRepository
from atrium.profiles.schemas import OwnProfile, PublicProfile, Visibility
from atrium.profiles.views import (
    ANONYMOUS,
    MEMBER,
    MODERATOR,
    OWNER,
    PRIVACY_FIELDS,
    PROFILE_FIELDS,
    may_see,
    own_profile,
    profile_record,
    public_view,
)
from atrium.users.repository import UserRepository


class ProfileUnit:
    """What every profile operation shares: the unit of work, the caller's account and
    profile row."""

    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = ProfileRepository(db)
        self.sizes = ctx.settings.avatars.sizes

    async def _user(self, principal: Principal) -> User:
        return await UserRepository(self.db).get_caller(principal.user_id)

    async def _profile(self, user_id: uuid.UUID) -> Profile:
        """The profile row of ``user_id``, created (not yet flushed) with defaults if absent."""
        return await self.repo.get_or_add(user_id, self.ctx.clock.now())

    def _own(self, user: User, profile: Profile | None) -> OwnProfile:
        return own_profile(user, profile, self.sizes)


class Profiles(ProfileUnit):
    async def get_own(self, principal: Principal) -> OwnProfile:
        """The caller's profile with every field and its privacy settings."""
        user = await self._user(principal)
        return self._own(user, await self.repo.get(user.id))

    async def update_own(self, principal: Principal, changes: dict[str, Any]) -> OwnProfile:
        """Apply validated ``changes`` (fields of ProfileUpdate that were sent).

        Raises:
            UsernameTaken: 409, another account has the username (case-insensitive: every
                username is stored lower-cased).
        """
        user = await self._user(principal)
        profile = await self._profile(user.id)
        now = self.ctx.clock.now()
        before: dict[str, Any] = {"username": user.username}
        before.update({k: getattr(profile, k) for k in (*PROFILE_FIELDS, *PRIVACY_FIELDS)})
        old_username = user.username
        for name, value in changes.items():
            if name == "username":
                if value is None:
                    continue
                user.username = value
            elif name in PRIVACY_FIELDS:
                if value is not None:
                    setattr(profile, name, Visibility(value).value)
            else:
                setattr(profile, name, value)
        after: dict[str, Any] = {"username": user.username}
        after.update({k: getattr(profile, k) for k in (*PROFILE_FIELDS, *PRIVACY_FIELDS)})
        changed = [k for k in after if after[k] != before[k]]
        if changed:
            profile.updated_at = now
            if "username" in changed:
                user.updated_at = now
        await self.repo.flush_username()
        await forget_profiles(self.db, self.ctx, old_username, user.username)
        if changed:
            await record(
                self.db,
                "profile.updated",
                at=now,
                actor_id=user.id,
                target_type="user",
                target_id=user.id,
                before={k: before[k] for k in changed},
                after={k: after[k] for k in changed},
            )
        return self._own(user, profile)

    async def _viewer(self, record: ProfileRecord, principal: Principal | None) -> str:
        if principal is None:
            return ANONYMOUS
        if principal.user_id == record.user_id:
            return OWNER
        needs_grants = Visibility.private.value in (
            record.visibility,
            record.location_visibility,
            record.website_visibility,
            record.pronouns_visibility,
        )
        if needs_grants:
            grants = await self.ctx.rbac.grants_of(principal.user_id)
            if principal.may_use("profiles:moderate", grants.permissions):
                return MODERATOR
        return MEMBER

    async def _record(self, username: str) -> ProfileRecord | None:
        cached = await cached_record(self.ctx, username)
        if cached is not None:
            return cached
        # A short session of its own, not the request's: the caller's grants may be
        # resolved next (another connection), which must not wait on this transaction
        # (SQLite transactions take the write lock).
        async with self.ctx.sessionmaker() as db:
            row = await ProfileRepository(db).visible_by_username(username)
        if row is None:
            return None
        fresh = profile_record(*row)
        await store_record(self.ctx, fresh)
        return fresh

    async def get_public(self, username: str, principal: Principal | None) -> PublicProfile:
        """The profile of ``username`` as the caller may see it.

        Raises:
            ProfileNotFound: 404, no active account has this username, or the caller may
                not see its profile (the same answer, so handles cannot be enumerated).
        """
        found = await self._record(username.lower())
        if found is None:
            raise ProfileNotFound("No such profile.")
        viewer = await self._viewer(found, principal)
        if not may_see(found.visibility, viewer):
            raise ProfileNotFound("No such profile.")
        return public_view(found, viewer, self.sizes)

    async def set_verified(
        self, actor_id: uuid.UUID, username: str, verified: bool
    ) -> PublicProfile:
        """Set or clear the verified badge of ``username``'s profile (moderators).

        Raises:
            ProfileNotFound: 404, no active account has this username.
        """
        row = await self.repo.visible_by_username(username.lower())
        if row is None:
            raise ProfileNotFound("No such profile.")
        user, profile = row
        if user.profile_verified != verified:
            now = self.ctx.clock.now()
            user.profile_verified = verified
            user.updated_at = now
            await self.db.flush()
            await record(
                self.db,
                "profile.verified" if verified else "profile.unverified",
                at=now,
                actor_id=actor_id,
                target_type="user",
                target_id=user.id,
                before={"profile_verified": not verified},
                after={"profile_verified": verified},
            )
        await forget_profiles(self.db, self.ctx, user.username)
        return public_view(profile_record(user, profile), MODERATOR, self.sizes)
