"""The rules of preferences: a versioned JSON document read over the current defaults."""

from __future__ import annotations

import functools
import uuid
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.auth.principal import Principal
from atrium.context import AppContext
from atrium.core.cache import CacheError
from atrium.core.db import after_commit
from atrium.errors import ValidationFailed
from atrium.models import UserPreferences
from atrium.profiles.repository import ProfileRepository
from atrium.profiles.schemas import PREFERENCES_SCHEMA_VERSION, Preferences, PreferencesRead

log = structlog.get_logger(__name__)


class PreferenceStore:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.repo = ProfileRepository(db)

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
        after_commit(
            self.db, functools.partial(forget_cached_preferences, self.ctx, principal.user_id)
        )
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


async def preferences_of(db: AsyncSession, user_id: uuid.UUID) -> PreferencesRead:
    """``user_id``'s preferences over the current defaults (the defaults when none were
    saved) — what other domains read, e.g. the notification channels per category."""
    row = await ProfileRepository(db).get_preferences(user_id)
    return _read_preferences(row.data if row else {})


def _cache_key(user_id: uuid.UUID) -> str:
    return f"prefs:{user_id}"


async def cached_preferences(ctx: AppContext, user_id: uuid.UUID) -> PreferencesRead | None:
    """``user_id``'s preferences as cached by :func:`remember_preferences` (the hosted
    pages' theme and language), or None (not cached, or the cache is unreachable)."""
    if ctx.settings.auth.principal_cache_ttl_seconds <= 0:
        return None
    try:
        (raw,) = await ctx.cache.get_many([_cache_key(user_id)])
        return PreferencesRead.model_validate_json(raw) if raw is not None else None
    except (CacheError, ValidationError):
        return None


async def remember_preferences(ctx: AppContext, user_id: uuid.UUID, prefs: PreferencesRead) -> None:
    """Cache ``prefs`` for ``auth.principal_cache_ttl_seconds``; dropped when they are saved
    (so a change shows on the next page; another worker with its own in-process cache
    shows it within that time)."""
    ttl = ctx.settings.auth.principal_cache_ttl_seconds
    if ttl <= 0:
        return
    try:
        await ctx.cache.set(_cache_key(user_id), prefs.model_dump_json().encode(), ttl)
    except CacheError as exc:
        log.warning("preferences_not_cached", error=str(exc))


async def forget_cached_preferences(ctx: AppContext, user_id: uuid.UUID) -> None:
    try:
        await ctx.cache.delete(_cache_key(user_id))
    except CacheError as exc:
        log.warning("preferences_not_forgotten", error=str(exc))
