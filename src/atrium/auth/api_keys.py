"""The principal behind an API key (``Authorization: Bearer atr_pat_...``).

Per request, once the key's format and checksum have been checked (no I/O, see
:mod:`atrium.core.apikeys`) and its HMAC computed, two cache reads (each one ``MGET`` on
Redis, coalesced with concurrent requests):

1. ``pat:<hmac>``: what the key is (its id, owner, scopes and expiry), never its state;
2. ``sess:<key id>``, ``user:<owner>``, ``keys:<owner>``: the key's state in the same
   namespace as sessions (``1`` active, ``0`` revoked, ``?...`` pending), the owner's
   snapshot, and the owner's marker (present while a suspension or deletion is being
   published: every key of the owner is then decided by the database).

Only on a miss, a pending entry or a marker is the database asked, in one joined query,
with single flight per key. Revoking a key reuses the sessions' two-step publication
(:meth:`atrium.auth.principal.PrincipalStore.revoke_on_commit` with the key's id), and
suspending or deleting the owner writes the owner's marker before the commit
(:meth:`~atrium.auth.principal.PrincipalStore.distrust_api_keys_on_commit`): with Redis,
either is refused on every node by the time the request that made it answers.

``last_used_at`` and ``last_used_ip`` are written at most once per window of
``api_keys.last_used_interval_seconds`` per key, by one node (see ``_touch``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.datastructures import State

from atrium.auth.principal import Principal, PrincipalStore, user_read
from atrium.auth.repository import ApiKeyLookup
from atrium.config import Settings
from atrium.context import AppContext
from atrium.core import apikeys, metrics
from atrium.core.cache import Cache, CacheError
from atrium.errors import InvalidToken
from atrium.models import UserStatus
from atrium.users.grants import role_names_of

log = structlog.get_logger(__name__)

_ACTIVE = b"1"
_REVOKED = b"0"


class _KeyMeta:
    """What a key is, as cached under ``pat:<hmac>`` (never its state)."""

    __slots__ = ("expires_at", "key_id", "scopes", "user_id")

    def __init__(
        self,
        key_id: uuid.UUID,
        user_id: uuid.UUID,
        scopes: frozenset[str],
        expires_at: float | None,
    ) -> None:
        self.key_id = key_id
        self.user_id = user_id
        self.scopes = scopes
        self.expires_at = expires_at

    def dumps(self) -> bytes:
        return json.dumps(
            [str(self.key_id), str(self.user_id), sorted(self.scopes), self.expires_at]
        ).encode()

    @classmethod
    def loads(cls, raw: bytes) -> _KeyMeta | None:
        try:
            kid, uid, scopes, expires_at = json.loads(raw)
            return cls(uuid.UUID(kid), uuid.UUID(uid), frozenset(scopes), expires_at)
        except (ValueError, TypeError):
            return None


class ApiKeyResolver:
    """Resolves API keys to principals (one per application, see
    :func:`api_key_resolver`)."""

    def __init__(
        self, cache: Cache, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self._cache = cache
        self._sessionmaker = sessionmaker
        self._secret = settings.api_keys.secret_bytes()
        self._ttl = settings.auth.principal_cache_ttl_seconds
        self._touch_interval = settings.api_keys.last_used_interval_seconds
        self._next_touch: dict[uuid.UUID, float] = {}
        self._inflight: dict[bytes, asyncio.Future[Principal]] = {}

    def digest(self, key: str) -> bytes:
        """The key's stored HMAC-SHA256 under this deployment's secret."""
        return apikeys.digest(key, self._secret)

    async def resolve(self, key: str, now: datetime, ip_address: str | None) -> Principal:
        """The principal of ``key``.

        Raises:
            InvalidToken: 401, the key is malformed (bad checksum: refused before any
                lookup), unknown, revoked or expired, or its owner is suspended or deleted.
        """
        if not apikeys.is_well_formed(key):
            raise InvalidToken("The API key is malformed.")
        digest = self.digest(key)
        principal = await self._from_cache(digest, now) if self._ttl > 0 else None
        if principal is None:
            principal = await self._load_once(digest, now)
        if self._touch_interval >= 0 and principal.api_key_id is not None:
            await self._touch(principal.api_key_id, now, ip_address)
        return principal

    async def _from_cache(self, digest: bytes, now: datetime) -> Principal | None:
        try:
            (raw,) = await self._cache.get_many([f"pat:{digest.hex()}"])
            meta = _KeyMeta.loads(raw) if raw is not None else None
            if meta is None:
                metrics.CACHE_LOOKUPS.labels("api_key", "miss").inc()
                return None
            state, snapshot, marker = await self._cache.get_many(
                [
                    f"sess:{meta.key_id}",
                    f"user:{meta.user_id}",
                    PrincipalStore.api_keys_marker(meta.user_id),
                ]
            )
        except CacheError as exc:
            log.warning("principal_cache_unavailable", error=str(exc))
            return None
        if state == _REVOKED:
            metrics.CACHE_LOOKUPS.labels("api_key", "hit").inc()
            raise InvalidToken("The API key has been revoked.")
        if meta.expires_at is not None and meta.expires_at <= now.timestamp():
            metrics.CACHE_LOOKUPS.labels("api_key", "hit").inc()
            raise InvalidToken("The API key has expired.")
        if state != _ACTIVE or snapshot is None or marker is not None:
            metrics.CACHE_LOOKUPS.labels("api_key", "miss").inc()
            return None
        metrics.CACHE_LOOKUPS.labels("api_key", "hit").inc()
        return Principal(
            user_id=meta.user_id,
            session_id=meta.key_id,
            user_json=snapshot,
            api_key_id=meta.key_id,
            scopes=meta.scopes,
        )

    def _forget_inflight(self, digest: bytes, _task: object) -> None:
        self._inflight.pop(digest, None)

    async def _load_once(self, digest: bytes, now: datetime) -> Principal:
        task = self._inflight.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._load(digest, now))
            self._inflight[digest] = task
            task.add_done_callback(functools.partial(self._forget_inflight, digest))
        return await asyncio.shield(task)

    async def _load(self, digest: bytes, now: datetime) -> Principal:
        async with self._sessionmaker() as db:
            row = await ApiKeyLookup(db).get_key_with_user(digest)
            if row is None:
                raise InvalidToken("Unknown API key.")
            key, user = row
            if key.revoked_at is not None:
                raise InvalidToken("The API key has been revoked.")
            if key.expires_at is not None and key.expires_at <= now:
                raise InvalidToken("The API key has expired.")
            if user.status != UserStatus.active.value or user.deleted_at is not None:
                raise InvalidToken("The owner of the API key cannot sign in.")
            roles = await role_names_of(db, user.id)
        snapshot = user_read(user, roles)
        scopes = frozenset(str(s) for s in key.scopes)
        principal = Principal(
            user_id=user.id,
            session_id=key.id,
            user_json=snapshot.model_dump_json().encode(),
            user=snapshot,
            api_key_id=key.id,
            scopes=scopes,
        )
        if self._ttl > 0:
            expires = key.expires_at.timestamp() if key.expires_at is not None else None
            meta = _KeyMeta(key.id, user.id, scopes, expires)
            ttl = self._ttl if expires is None else min(self._ttl, expires - now.timestamp())
            try:
                await self._cache.set(f"pat:{digest.hex()}", meta.dumps(), ttl)
                # NX: never over a pending marker or a tombstone (principal.py).
                await self._cache.add(f"sess:{key.id}", _ACTIVE, ttl)
                await self._cache.set(f"user:{user.id}", principal.user_json, self._ttl)
            except CacheError as exc:
                log.warning("principal_cache_unavailable", error=str(exc))
        return principal

    async def _touch(self, key_id: uuid.UUID, now: datetime, ip_address: str | None) -> None:
        """Record the key's use once per window of ``last_used_interval_seconds`` (by the
        application clock): a node-local deadline spares the cache call, and a ``SET NX``
        on the window's entry in the shared cache elects the one node that writes. A
        failure is logged, never the request's."""
        at = now.timestamp()
        if self._next_touch.get(key_id, 0.0) > at:
            return
        interval = self._touch_interval
        window = int(at // interval) if interval > 0 else int(at * 1000)
        self._next_touch[key_id] = (window + 1) * interval if interval > 0 else 0.0
        if len(self._next_touch) > 100_000:
            self._next_touch.clear()
        try:
            if interval > 0 and not await self._cache.add(
                f"patused:{key_id}:{window}", b"1", interval
            ):
                return
            async with self._sessionmaker() as db:
                await ApiKeyLookup(db).touch(key_id, now.astimezone(UTC), ip_address)
                await db.commit()
        except Exception as exc:  # noqa: BLE001  # bookkeeping must not fail the request
            log.warning("api_key_last_used_not_recorded", key_id=str(key_id), error=str(exc))


def api_key_resolver(state: State, ctx: AppContext) -> ApiKeyResolver:
    """The application's :class:`ApiKeyResolver`, made on first use and kept in
    ``state`` (the application's ``app.state``)."""
    resolver = getattr(state, "api_key_resolver", None)
    if resolver is None:
        resolver = ApiKeyResolver(ctx.cache, ctx.sessionmaker, ctx.settings)
        state.api_key_resolver = resolver
    assert isinstance(resolver, ApiKeyResolver)
    return resolver
