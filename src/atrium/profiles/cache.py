"""The public-profile cache: one entry per username, shared by every node with Redis.

An entry is the :class:`ProfileRecord` of the username (everything the public view is
computed from, privacy settings included), so one entry serves every kind of caller;
the privacy rules are applied on each read. Any change that affects a public view
(profile fields, privacy, avatar, username, verified badge, suspension, deletion) calls
:func:`forget_profiles`, which deletes the entries at once and again after the commit: a
reader between the two could otherwise cache the old rows again. A change committed
outside a request's unit of work (an import, on its own connection) calls
:func:`forget_cached_profiles` once it has committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import structlog
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.cache import Cache, CacheError
from atrium.core.db import after_commit

log = structlog.get_logger(__name__)


class ProfileRecord(BaseModel):
    user_id: uuid.UUID
    username: str
    verified: bool
    display_name: str | None = None
    bio: str | None = None
    location: str | None = None
    website: str | None = None
    pronouns: str | None = None
    visibility: str = "public"
    location_visibility: str = "public"
    website_visibility: str = "public"
    pronouns_visibility: str = "public"
    avatar_version: str | None = None


def _key(username: str) -> str:
    return f"profile:v1:{username}"


async def cached_record(ctx: AppContext, username: str) -> ProfileRecord | None:
    """The cached record of ``username``, or None on a miss (counted either way)."""
    try:
        (raw,) = await ctx.cache.get_many([_key(username)])
    except CacheError as exc:
        log.warning("profile_cache_unavailable", error=str(exc))
        raw = None
    if raw is None:
        metrics.CACHE_LOOKUPS.labels("profile", "miss").inc()
        return None
    metrics.CACHE_LOOKUPS.labels("profile", "hit").inc()
    return ProfileRecord.model_validate_json(raw)


async def store_record(ctx: AppContext, record: ProfileRecord) -> None:
    ttl = ctx.settings.profiles.cache_ttl_seconds
    if ttl <= 0:
        return
    try:
        await ctx.cache.set(_key(record.username), record.model_dump_json().encode(), ttl)
    except CacheError as exc:
        log.warning("profile_cache_unavailable", error=str(exc))


async def forget_cached_profiles(
    cache: Cache, usernames: Sequence[str], *, batch: int = 1000
) -> None:
    """Drop the cached records of ``usernames`` now, ``batch`` keys per call.

    For changes committed outside a request's unit of work (an import commits on its own
    connection): call it after the commit. A cache error is logged, not raised: the
    entries then lapse within ``profiles.cache_ttl_seconds``."""
    for start in range(0, len(usernames), batch):
        try:
            await cache.delete(*(_key(u) for u in usernames[start : start + batch]))
        except CacheError as exc:
            log.error("profile_cache_not_invalidated", error=str(exc), left=len(usernames) - start)
            return


async def forget_profiles(db: AsyncSession, ctx: AppContext, *usernames: str | None) -> None:
    """Drop the cached records of ``usernames`` now and once ``db`` has committed."""
    names = tuple(sorted({u for u in usernames if u}))
    if not names:
        return
    await forget_cached_profiles(ctx.cache, names)

    async def again() -> None:
        await forget_cached_profiles(ctx.cache, names)

    after_commit(db, again)
