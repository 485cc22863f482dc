"""The principal behind an access token, resolved without a database round-trip when cached.

Per authenticated request: verify the JWT (no I/O), then one cache read (``MGET`` on Redis)
of two entries — the session's state and the user's snapshot. Only on a miss is the
database asked, in one joined query.

Revocation is a tombstone written over the session's entry with a plain ``SET`` and kept
for as long as an access token of that session can live; a reader populating the cache
after a database read uses ``SET NX``, so it can never overwrite a tombstone with a stale
"active". With Redis, a revocation is seen on every node at once. With the in-process
cache, it is seen at once by the process that made it and by other worker processes
within ``principal_cache_ttl_seconds``.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.auth.repository import SessionRepository
from atrium.config import Settings
from atrium.core import metrics
from atrium.core.cache import Cache, CacheError
from atrium.core.db import after_commit
from atrium.core.tokens import CLOCK_SKEW_SECONDS, AccessTokenClaims
from atrium.errors import InvalidToken
from atrium.models import AuthSession, User, UserStatus
from atrium.rbac.permissions import SUPERADMIN
from atrium.rbac.repository import RoleRepository
from atrium.users.schemas import UserRead

log = structlog.get_logger(__name__)

_ACTIVE = b"1"
_REVOKED = b"0"


class Principal:
    """The authenticated caller: the user, a snapshot of the account and the session.

    ``user_json`` is the snapshot as cached (the JSON of :class:`UserRead`): routes that
    return the account send these bytes as they are, and ``user`` is parsed from them only
    when a route reads it.
    """

    __slots__ = ("_user", "session_id", "user_id", "user_json")

    def __init__(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        user_json: bytes,
        user: UserRead | None = None,
    ) -> None:
        self.user_id = user_id
        self.session_id = session_id
        self.user_json = user_json
        self._user = user

    @property
    def user(self) -> UserRead:
        if self._user is None:
            self._user = UserRead.model_validate_json(self.user_json)
        return self._user


def user_read(user: User, roles: Sequence[str] = ()) -> UserRead:
    """The owner's view of ``user``; ``roles`` are the names of the roles it holds."""
    return UserRead(
        id=user.id,
        email=user.email,
        full_name=user.full_name,
        status=user.status,
        email_verified=user.email_verified_at is not None,
        is_superuser=SUPERADMIN in roles,
        roles=sorted(roles),
        created_at=user.created_at,
        updated_at=user.updated_at,
        last_login_at=user.last_login_at,
        locale=user.locale,
    )


class PrincipalStore:
    """Resolves access-token claims to a :class:`Principal` and records revocations."""

    def __init__(
        self,
        cache: Cache,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        self._cache = cache
        self._sessionmaker = sessionmaker
        self._ttl = settings.auth.principal_cache_ttl_seconds
        self._inflight: dict[uuid.UUID, asyncio.Future[Principal]] = {}
        self._tombstone_ttl = settings.auth.access_token_ttl_seconds + CLOCK_SKEW_SECONDS

    @staticmethod
    def _session_key(session_id: uuid.UUID) -> str:
        return f"sess:{session_id}"

    @staticmethod
    def _user_key(user_id: uuid.UUID) -> str:
        return f"user:{user_id}"

    async def resolve(self, claims: AccessTokenClaims, now: datetime) -> Principal:
        """The principal for verified ``claims``.

        Raises:
            InvalidToken: the session is revoked, expired or unknown, or its user is no
                longer active.
        """
        skey, ukey = self._session_key(claims.session_id), self._user_key(claims.user_id)
        if self._ttl > 0:
            try:
                state, snapshot = await self._cache.get_many([skey, ukey])
            except CacheError as exc:
                log.warning("principal_cache_unavailable", error=str(exc))
                state = snapshot = None
            if state == _REVOKED:
                metrics.CACHE_LOOKUPS.labels("principal", "hit").inc()
                raise InvalidToken("The session has been revoked.")
            if state == _ACTIVE and snapshot is not None:
                metrics.CACHE_LOOKUPS.labels("principal", "hit").inc()
                return Principal(
                    user_id=claims.user_id, session_id=claims.session_id, user_json=snapshot
                )
            metrics.CACHE_LOOKUPS.labels("principal", "miss").inc()
        return await self._load_once(claims, now, skey, ukey)

    def _forget_inflight(self, session_id: uuid.UUID, _task: object) -> None:
        self._inflight.pop(session_id, None)

    async def _load_once(
        self, claims: AccessTokenClaims, now: datetime, skey: str, ukey: str
    ) -> Principal:
        """Single flight: concurrent misses for one session share one database load, so
        a cache entry expiring under a burst of requests costs one load, not one each."""
        task = self._inflight.get(claims.session_id)
        if task is None:
            task = asyncio.ensure_future(self._load(claims, now, skey, ukey))
            self._inflight[claims.session_id] = task
            task.add_done_callback(functools.partial(self._forget_inflight, claims.session_id))
        return await asyncio.shield(task)

    async def _load(
        self, claims: AccessTokenClaims, now: datetime, skey: str, ukey: str
    ) -> Principal:
        async with self._sessionmaker() as db:
            row = await SessionRepository(db).get_session_with_user(claims.session_id)
            if row is None:
                raise InvalidToken("Unknown session.")
            session, user = row
            if not _session_usable(session, user, claims, now):
                raise InvalidToken("The session is no longer valid.")
            # Shown by GET /users/me; authorisation never reads it (see rbac/resolver.py).
            roles = await RoleRepository(db).role_names_of(user.id)
        snapshot = user_read(user, roles)
        principal = Principal(
            user_id=user.id,
            session_id=session.id,
            user_json=snapshot.model_dump_json().encode(),
            user=snapshot,
        )
        if self._ttl > 0:
            ttl = min(self._ttl, (session.expires_at - now).total_seconds())
            try:
                await self._cache.add(skey, _ACTIVE, ttl)
                await self._cache.set(ukey, principal.user_json, self._ttl)
            except CacheError as exc:
                log.warning("principal_cache_unavailable", error=str(exc))
        return principal

    def revoke_on_commit(self, db: AsyncSession, session_ids: Iterable[uuid.UUID]) -> None:
        """Write the tombstones of ``session_ids`` once ``db``'s transaction commits.

        After the commit, not before: a transaction that fails after revoking (a database
        error at commit) must not leave live sessions refused for an access token's
        lifetime. A concurrent request that loaded the session before the commit cannot
        undo the tombstone: it caches with ``SET NX``, the tombstone is a plain ``SET``.
        """
        ids = list(dict.fromkeys(session_ids))
        if ids:
            after_commit(db, functools.partial(self.revoke, ids))

    def forget_users_on_commit(self, db: AsyncSession, user_ids: Iterable[uuid.UUID]) -> None:
        """Drop the cached snapshots of ``user_ids`` once ``db``'s transaction commits (one
        cache call for all of them).

        Dropped before the commit, any request in between would cache the old row again.
        After it, only a load that read the row before the commit and writes the cache after
        it can do so; that snapshot lapses within ``principal_cache_ttl_seconds``.
        """
        ids = list(dict.fromkeys(user_ids))
        if ids:
            after_commit(db, functools.partial(self.forget_users, ids))

    async def revoke(self, session_ids: Iterable[uuid.UUID]) -> None:
        """Write tombstones so that access tokens of ``session_ids`` stop working at once
        (one cache call for all of them)."""
        keys = {self._session_key(sid): _REVOKED for sid in session_ids}
        try:
            await self._cache.set_many(keys, self._tombstone_ttl)
        except CacheError as exc:
            # The database rows are revoked as well; stale cache entries lapse within
            # principal_cache_ttl_seconds.
            log.error("revocation_not_cached", sessions=len(keys), error=str(exc))

    async def forget_users(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Drop the cached snapshots of ``user_ids`` (one cache call)."""
        try:
            await self._cache.delete(*(self._user_key(uid) for uid in user_ids))
        except CacheError as exc:
            log.warning("principal_cache_unavailable", error=str(exc))


def _session_usable(
    session: AuthSession, user: User, claims: AccessTokenClaims, now: datetime
) -> bool:
    return (
        session.user_id == claims.user_id
        and session.revoked_at is None
        and session.expires_at > now
        and user.status == UserStatus.active.value
        and user.deleted_at is None
    )
