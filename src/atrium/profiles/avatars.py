"""The rules of avatars: upload (re-encoded off the event loop), replace and remove, with
the stored objects kept in step with the transaction."""

from __future__ import annotations

import anyio
from starlette.datastructures import UploadFile

from atrium.audit.service import record
from atrium.auth.principal import Principal
from atrium.context import AppContext
from atrium.core.db import after_commit, after_rollback
from atrium.core.storage import delete_objects
from atrium.profiles.avatar import CONTENT_TYPE, avatar_key, avatar_keys, process_avatar
from atrium.profiles.cache import forget_profiles
from atrium.profiles.exceptions import UploadTooLarge
from atrium.profiles.profile import ProfileUnit
from atrium.profiles.schemas import OwnProfile

READ_CHUNK = 64 * 1024


class Avatars(ProfileUnit):
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


async def _delete_objects(ctx: AppContext, keys: list[str]) -> None:
    await delete_objects(ctx.storage, keys)
