"""The rules of profiles, privacy, verification, avatars and preferences."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from atrium.audit.service import record
from atrium.auth.principal import Principal
from atrium.context import AppContext
from atrium.core.db import after_commit, after_rollback
from atrium.errors import InvalidToken, ValidationFailed
from atrium.files.cleanup import delete_objects
from atrium.models import Profile, User, UserPreferences
from atrium.profiles.avatar import CONTENT_TYPE, avatar_key, avatar_keys, process_avatar
from atrium.profiles.cache import ProfileRecord, cached_record, forget_profiles, store_record
from atrium.profiles.exceptions import ProfileNotFound, UploadTooLarge
from atrium.profiles.repository import ProfileRepository
from atrium.profiles.schemas import (
    AVATAR_PATH,
    PREFERENCES_SCHEMA_VERSION,
    OwnProfile,
    Preferences,
    PreferencesRead,
    PublicProfile,
    Visibility,
)

log = structlog.get_logger(__name__)

PROFILE_FIELDS = ("display_name", "bio", "location", "website", "pronouns", "locale", "timezone")
PRIVACY_FIELDS = ("visibility", "location_visibility", "website_visibility", "pronouns_visibility")
READ_CHUNK = 64 * 1024

ANONYMOUS, MEMBER, OWNER, MODERATOR = "anonymous", "member", "owner", "moderator"


def may_see(level: str, viewer: str) -> bool:
    """Whether a ``viewer`` (anonymous, member, owner, moderator) may see something whose
    visibility is ``level``."""
    if level == Visibility.public:
        return True
    if level == Visibility.members:
        return viewer != ANONYMOUS
    return viewer in (OWNER, MODERATOR)


def avatar_urls(user_id: uuid.UUID, version: str | None, sizes: list[int]) -> dict[str, str] | None:
    if version is None:
        return None
    return {str(size): f"{AVATAR_PATH}/{avatar_key(user_id, version, size)[8:]}" for size in sizes}


def public_view(record: ProfileRecord, viewer: str, sizes: list[int]) -> PublicProfile:
    """``record`` as ``viewer`` may see it (the profile itself is already visible)."""

    def field(name: str) -> str | None:
        value: str | None = getattr(record, name)
        return value if may_see(getattr(record, f"{name}_visibility"), viewer) else None

    return PublicProfile(
        username=record.username,
        display_name=record.display_name,
        bio=record.bio,
        location=field("location"),
        website=field("website"),
        pronouns=field("pronouns"),
        verified=record.verified,
        avatar=avatar_urls(record.user_id, record.avatar_version, sizes),
    )


def _record(user: User, profile: Profile | None) -> ProfileRecord:
    # Only looked up by username, so the handle is set.
    base = ProfileRecord(
        user_id=user.id, username=user.username or "", verified=user.profile_verified
    )
    if profile is None:
        return base
    return base.model_copy(
        update={
            name: getattr(profile, name)
            for name in (
                "display_name",
                "bio",
                "location",
                "website",
                "pronouns",
                *PRIVACY_FIELDS,
                "avatar_version",
            )
        }
    )


class ProfileService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = ProfileRepository(db)
        self.sizes = ctx.settings.avatars.sizes

    async def _user(self, principal: Principal) -> User:
        user = await self.db.get(User, principal.user_id)
        if user is None:
            raise InvalidToken("The account no longer exists.")
        return user

    async def _profile(self, user_id: uuid.UUID) -> Profile:
        """The profile row of ``user_id``, created (not yet flushed) with defaults if absent."""
        profile = await self.repo.get(user_id)
        if profile is None:
            profile = await self.repo.add(
                Profile(
                    user_id=user_id,
                    visibility=Visibility.public.value,
                    location_visibility=Visibility.public.value,
                    website_visibility=Visibility.public.value,
                    pronouns_visibility=Visibility.public.value,
                    updated_at=self.ctx.clock.now(),
                )
            )
        return profile

    def _own(self, user: User, profile: Profile | None) -> OwnProfile:
        public = Visibility.public
        return OwnProfile(
            username=user.username,
            display_name=profile.display_name if profile else None,
            bio=profile.bio if profile else None,
            location=profile.location if profile else None,
            website=profile.website if profile else None,
            pronouns=profile.pronouns if profile else None,
            locale=profile.locale if profile else None,
            timezone=profile.timezone if profile else None,
            visibility=Visibility(profile.visibility) if profile else public,
            location_visibility=Visibility(profile.location_visibility) if profile else public,
            website_visibility=Visibility(profile.website_visibility) if profile else public,
            pronouns_visibility=Visibility(profile.pronouns_visibility) if profile else public,
            verified=user.profile_verified,
            avatar=avatar_urls(user.id, profile.avatar_version, self.sizes) if profile else None,
            updated_at=profile.updated_at if profile else None,
        )

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
            if "profiles:moderate" in grants.permissions:
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
        fresh = _record(*row)
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
        return public_view(_record(user, profile), MODERATOR, self.sizes)

    # --- avatars ------------------------------------------------------------------------

    async def _read_limited(self, upload: UploadFile, limit: int) -> bytes:
        """The uploaded file's bytes, refusing more than ``limit`` (413) as they are read."""
        parts: list[bytes] = []
        total = 0
        while chunk := await upload.read(READ_CHUNK):
            total += len(chunk)
            if total > limit:
                raise UploadTooLarge(f"The image is larger than {limit} bytes.")
            parts.append(chunk)
        return b"".join(parts)

    async def set_avatar(self, principal: Principal, upload: UploadFile) -> OwnProfile:
        """Replace the caller's avatar with the uploaded image, re-encoded (see avatar.py).

        The new objects are stored first (and deleted again if the transaction rolls
        back); the previous avatar's objects are deleted only after the commit.

        Raises:
            UploadTooLarge: 413. UnsupportedImageType: 415. ImageTooLarge: 422.
            InvalidImage: 422. StorageError: 503.
        """
        settings = self.ctx.settings.avatars
        await self.ctx.ratelimiter.hit("uploads", str(principal.user_id))
        data = await self._read_limited(upload, settings.max_bytes)
        processed = await anyio.to_thread.run_sync(
            lambda: process_avatar(
                data,
                max_pixels=settings.max_pixels,
                sizes=settings.sizes,
                quality=settings.webp_quality,
            )
        )
        user = await self._user(principal)
        profile = await self._profile(user.id)
        old_version = profile.avatar_version
        new_keys = avatar_keys(user.id, processed.version, settings.sizes)
        if processed.version != old_version:
            storage = self.ctx.storage

            async def discard_new() -> None:
                await _delete_objects(self.ctx, new_keys)

            after_rollback(self.db, discard_new)
            for size, image in processed.images.items():
                await storage.put_bytes(
                    avatar_key(user.id, processed.version, size), image, CONTENT_TYPE
                )
            if old_version is not None:
                old_keys = avatar_keys(user.id, old_version, settings.sizes)

                async def drop_old() -> None:
                    await _delete_objects(self.ctx, old_keys)

                after_commit(self.db, drop_old)
        now = self.ctx.clock.now()
        profile.avatar_version = processed.version
        profile.updated_at = now
        await self.db.flush()
        await forget_profiles(self.db, self.ctx, user.username)
        await record(
            self.db,
            "profile.avatar_changed",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            details={"version": processed.version, "source_format": processed.source_format},
        )
        return self._own(user, profile)

    async def delete_avatar(self, principal: Principal) -> None:
        """Remove the caller's avatar; its objects are deleted after the commit."""
        user = await self._user(principal)
        profile = await self.repo.get(user.id)
        if profile is None or profile.avatar_version is None:
            return
        keys = avatar_keys(user.id, profile.avatar_version, self.sizes)
        now = self.ctx.clock.now()
        profile.avatar_version = None
        profile.updated_at = now
        await self.db.flush()

        async def drop() -> None:
            await _delete_objects(self.ctx, keys)

        after_commit(self.db, drop)
        await forget_profiles(self.db, self.ctx, user.username)
        await record(
            self.db,
            "profile.avatar_removed",
            at=now,
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
        )

    # --- preferences --------------------------------------------------------------------

    async def get_preferences(self, principal: Principal) -> PreferencesRead:
        """The caller's preferences; keys never set (or added by a later schema version)
        have their defaults."""
        row = await self.repo.get_preferences(principal.user_id)
        return _read_preferences(row.data if row else {})

    async def put_preferences(self, principal: Principal, prefs: Preferences) -> PreferencesRead:
        """Replace every preference (keys not sent go back to their defaults)."""
        return await self._save(principal, prefs)

    async def patch_preferences(
        self, principal: Principal, patch: dict[str, Any]
    ) -> PreferencesRead:
        """Merge ``patch`` (a partial document, nested objects merged key by key) into the
        caller's preferences.

        Raises:
            ValidationFailed: 422, an unknown key or a bad value; ``errors`` per field.
        """
        current = await self.get_preferences(principal)
        merged = _merge(current.model_dump(exclude={"schema_version"}), patch)
        try:
            prefs = Preferences.model_validate(merged)
        except ValidationError as exc:
            raise ValidationFailed(
                "The preferences are not valid.",
                errors=[
                    {"loc": ["body", *map(str, e["loc"])], "type": e["type"], "msg": e["msg"]}
                    for e in exc.errors()
                ],
            ) from exc
        return await self._save(principal, prefs)

    async def _save(self, principal: Principal, prefs: Preferences) -> PreferencesRead:
        now = self.ctx.clock.now()
        data = prefs.model_dump(mode="json")
        row = await self.repo.get_preferences(principal.user_id)
        if row is None:
            await self.repo.add_preferences(
                UserPreferences(
                    user_id=principal.user_id,
                    schema_version=PREFERENCES_SCHEMA_VERSION,
                    data=data,
                    updated_at=now,
                )
            )
        else:
            row.data = data
            row.schema_version = PREFERENCES_SCHEMA_VERSION
            row.updated_at = now
        await self.db.flush()
        return PreferencesRead.model_validate(data)


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_preferences(stored: dict[str, Any]) -> PreferencesRead:
    """Stored preferences over the current defaults. Keys a later version removed are
    dropped, and a stored value the current rules refuse falls back to its default, so an
    old row always reads."""
    defaults = Preferences().model_dump(mode="json")
    merged = _merge(defaults, _known(stored, defaults))
    try:
        return PreferencesRead.model_validate(merged)
    except ValidationError:
        log.warning("stored_preferences_invalid")
        return PreferencesRead.model_validate(defaults)


def _known(stored: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in stored.items():
        if key not in template:
            continue
        if isinstance(template[key], dict):
            if isinstance(value, dict):
                out[key] = _known(value, template[key])
        else:
            out[key] = value
    return out


async def _delete_objects(ctx: AppContext, keys: list[str]) -> None:
    await delete_objects(ctx.storage, keys)
