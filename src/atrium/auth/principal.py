"""The principal behind an access token, resolved without a database round-trip when cached.

Per authenticated request: verify the JWT (no I/O), then one cache read (``MGET`` on Redis)
of two entries — the session's state and the user's snapshot. Only on a miss is the
database asked, in one joined query.

Revocation is published in two steps around the revoking transaction's commit:

1. **Before the commit**, a *pending* marker (``?`` and a value unique to the transaction)
   is written over each session's entry with a plain ``SET``. A reader that finds a marker
   trusts nothing cached and asks the database. If the marker cannot be written (this node
   cannot reach Redis), the request fails with 503 and its transaction rolls back: a
   revocation is never reported done while another node may still accept the session
   from its cache.
2. **After the commit**, the marker is replaced by a tombstone (``0``), kept as long as an
   access token of that session can live: refused straight from the cache. If that write
   fails, the marker stays and readers keep asking the database, which says revoked.
   **After a rollback**, the marker is deleted only where it is still this transaction's
   (compare-and-delete): the session is live again and the cache serves it. If that fails
   too, the session keeps working, read from the database until the marker expires.

A reader populating the cache after a database read uses ``SET NX``, so it can never
overwrite a marker or a tombstone with a stale "active". With Redis, a revocation is seen
on every node by the time the request answers. With the in-process cache, it is seen at
once by the process that made it and by other worker processes within
``principal_cache_ttl_seconds``.
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
from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.assurance import NO_USER_AUTHENTICATION
from atrium.core.cache import Cache, CacheError
from atrium.core.db import after_commit, after_rollback, before_commit
from atrium.core.tokens import CLOCK_SKEW_SECONDS, AccessTokenClaims, Assurance
from atrium.errors import InvalidToken, ServiceUnavailable
from atrium.models import AuthSession, User, UserStatus
from atrium.models.role import SUPERADMIN
from atrium.users.grants import role_names_of
from atrium.users.schemas import UserRead

log = structlog.get_logger(__name__)

_ACTIVE = b"1"
_REVOKED = b"0"
_PENDING = b"?"


class RevocationUnavailable(ServiceUnavailable):
    """The revocation could not be announced to every node (the shared cache is
    unreachable from this node): nothing was changed."""

    def __init__(self) -> None:
        super().__init__(
            "The revocation could not be published to every node; nothing was changed. "
            "Try again shortly."
        )


class Principal:
    """The authenticated caller: the user, a snapshot of the account and the session.

    ``assurance`` is how strongly the session was authenticated, as the access token
    states it (``acr``, ``amr``, ``auth_time``; see :class:`atrium.core.tokens.Assurance`);
    an API key has none (aal1, no methods, never recent).

    ``user_json`` is the snapshot as cached (the JSON of :class:`UserRead`): routes that
    return the account send these bytes as they are, and ``user`` is parsed from them only
    when a route reads it.

    A caller authenticated with an API key (``Authorization: Bearer atr_pat_...``) has
    ``api_key_id`` set, ``session_id`` equal to it (the key's revocation entry shares the
    sessions' namespace of the cache) and ``scopes``, the permissions the key may use:
    ``rbac.require`` grants the intersection of these and the owner's permissions. A
    session's caller has ``api_key_id`` and ``scopes`` None.
    """

    __slots__ = ("_user", "api_key_id", "assurance", "scopes", "session_id", "user_id", "user_json")

    def __init__(
        self,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        user_json: bytes,
        assurance: Assurance = NO_USER_AUTHENTICATION,
        user: UserRead | None = None,
        api_key_id: uuid.UUID | None = None,
        scopes: frozenset[str] | None = None,
    ) -> None:
        self.assurance = assurance
        self.user_id = user_id
        self.session_id = session_id
        self.user_json = user_json
        self._user = user
        self.api_key_id = api_key_id
        self.scopes = scopes

    def may_use(self, permission: str, granted: frozenset[str]) -> bool:
        """Whether this caller may use ``permission``, the owner holding ``granted``: a
        session uses all of them, an API key only those within its scopes."""
        return permission in granted and (self.scopes is None or permission in self.scopes)

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

    @staticmethod
    def api_keys_marker(user_id: uuid.UUID) -> str:
        """The cache key whose presence makes every API key of ``user_id`` be decided by
        the database (see :meth:`distrust_api_keys_on_commit`)."""
        return f"keys:{user_id}"

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
            # A pending revocation (state starting with "?") is decided by the database.
            if state == _ACTIVE and snapshot is not None:
                metrics.CACHE_LOOKUPS.labels("principal", "hit").inc()
                return Principal(
                    user_id=claims.user_id,
                    session_id=claims.session_id,
                    user_json=snapshot,
                    assurance=claims.assurance,
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
            roles = await role_names_of(db, user.id)
        snapshot = user_read(user, roles)
        principal = Principal(
            user_id=user.id,
            session_id=session.id,
            user_json=snapshot.model_dump_json().encode(),
            assurance=claims.assurance,
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
        """Publish the revocation of ``session_ids`` with ``db``'s transaction: a pending
        marker before the commit (or :class:`RevocationUnavailable`, 503, and a rollback),
        the tombstone after it, the marker withdrawn after a rollback (see the module
        docstring). One cache call for all the sessions at each step.
        """
        ids = list(dict.fromkeys(session_ids))
        if not ids or self._ttl <= 0:
            return  # without the cache every request reads the session from the database
        keys = [self._session_key(sid) for sid in ids]
        marker = _PENDING + uuid.uuid4().hex.encode()
        before_commit(db, functools.partial(self._mark_pending, keys, marker))
        after_commit(db, functools.partial(self.revoke, ids))
        after_rollback(db, functools.partial(self._withdraw, keys, marker))

    def distrust_api_keys_on_commit(self, db: AsyncSession, user_ids: Iterable[uuid.UUID]) -> None:
        """Make every API key of ``user_ids`` be checked against the database on every
        node, from before ``db``'s transaction commits until no entry cached earlier can
        be left: for a change to the owners themselves (suspended, deleted, all sessions
        ended) that their keys must follow at once. One pending marker per owner
        (``keys:<user id>``) written before the commit (or 503 and a rollback, as for
        :meth:`revoke_on_commit`), kept after it until it expires, withdrawn after a
        rollback. The keys themselves stay valid in the database: once the owner is active
        again they work again.
        """
        ids = list(dict.fromkeys(user_ids))
        if not ids or self._ttl <= 0:
            return
        keys = [self.api_keys_marker(uid) for uid in ids]
        marker = _PENDING + uuid.uuid4().hex.encode()
        before_commit(db, functools.partial(self._mark_pending, keys, marker))
        after_rollback(db, functools.partial(self._withdraw, keys, marker))

    async def _mark_pending(self, keys: list[str], marker: bytes) -> None:
        try:
            await self._cache.set_many(dict.fromkeys(keys, marker), self._tombstone_ttl)
        except CacheError as exc:
            log.error("revocation_not_published", sessions=len(keys), error=str(exc))
            raise RevocationUnavailable() from exc

    async def _withdraw(self, keys: list[str], marker: bytes) -> None:
        try:
            await self._cache.delete_if(keys, marker)
        except CacheError as exc:
            # The sessions work, read from the database until the markers expire.
            log.warning("revocation_marker_not_withdrawn", sessions=len(keys), error=str(exc))

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
            # The database rows are revoked; a pending marker written before the commit
            # makes readers ask the database until it expires.
            log.warning("revocation_not_cached", sessions=len(keys), error=str(exc))

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


def principal_store(ctx: AppContext) -> PrincipalStore:
    """The application's :class:`PrincipalStore` (``ctx.principals``, typed for the
    domains as the narrower :class:`atrium.context.PrincipalCache`)."""
    store = ctx.principals
    assert isinstance(store, PrincipalStore)
    return store
