"""Effective permissions of a user, cached per node and invalidated on every node at once.

A role change (grant, revoke, role created, changed or deleted) publishes a new random
*RBAC version* under one key of the shared cache (``rbac:version``; Redis in production),
after its transaction commits. Each node keeps, in memory, the role graph and each user's
resolved permissions *keyed by that version*. An authorised request reads the version (one
``GET``) and finds its entry locally; after a change no node has an entry for the new
version, so every node reloads from the database on its next request. Old entries are
never used again and age out. One key therefore invalidates a change that affects any
number of users (e.g. a permission removed from ``user``), with no key scan.

A change is published in two steps around its commit (:meth:`PermissionResolver.
publish_change_on_commit`): **before** the commit the version becomes *pending* (``?`` and
a random value, for at most a minute) — every node that reads a pending version uses and
fills no local entry and reads the database — and **after** the commit (or a rollback) a
new random version replaces it. Publishing the final version only after the commit
matters: published before, a concurrent reader could load the old rows and remember them
under the new version. If the pending version cannot be written (this node cannot reach
Redis) the change fails with 503 and rolls back, so a role change is never reported done
while another node may still use the old permissions. If the final version cannot be
written, the pending one expires and the next reader creates a fresh version: no node has
entries for it. A node that cannot reach Redis itself reads the database on every request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import structlog
from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.config import Settings
from atrium.context import AppContext
from atrium.core.cache import Cache, CacheError
from atrium.core.db import after_commit, after_rollback, before_commit
from atrium.errors import ServiceUnavailable
from atrium.rbac.graph import RoleGraph
from atrium.rbac.repository import RoleRepository

log = structlog.get_logger(__name__)

VERSION_KEY = "rbac:version"
_VERSION_TTL = 30 * 86_400.0
_PENDING = b"?"
# Outlives any commit: statements are bounded by database.command_timeout_seconds.
_PENDING_TTL = 60.0


@dataclass(frozen=True)
class Grants:
    """The roles a user holds directly and the permissions they add up to."""

    roles: tuple[str, ...]
    permissions: frozenset[str]
    # The held roles whose holders must use a second factor (inherited attribute).
    mfa_required_roles: tuple[str, ...] = ()


async def publish_version(cache: Cache) -> None:
    """Write a new RBAC version to ``cache``, after a role change has committed: every node
    sharing it reloads permissions on its next request. For a change committed outside a
    request's unit of work (an import) and by a process without a resolver of its own (a
    command, with Redis). A cache error is logged, not raised: the node-local entries then
    lapse within ``rbac.permission_cache_ttl_seconds``."""
    try:
        await cache.set(VERSION_KEY, uuid.uuid4().hex.encode(), _VERSION_TTL)
    except CacheError as exc:
        log.warning("rbac_version_not_replaced", error=str(exc))


class PermissionResolver:
    def __init__(
        self, cache: Cache, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
    ) -> None:
        self._cache = cache
        self._sessionmaker = sessionmaker
        self._ttl = settings.rbac.permission_cache_ttl_seconds
        maxsize = 100_000
        ttl = max(self._ttl, 0.001)
        self._grants: TTLCache[tuple[str, uuid.UUID], Grants] = TTLCache(maxsize, ttl)
        self._graphs: TTLCache[str, RoleGraph] = TTLCache(8, ttl)

    async def _version(self) -> str | None:
        """The published RBAC version, creating one when absent; None if the cache is down."""
        try:
            (value,) = await self._cache.get_many([VERSION_KEY])
            if value is None:
                await self._cache.add(VERSION_KEY, uuid.uuid4().hex.encode(), _VERSION_TTL)
                (value,) = await self._cache.get_many([VERSION_KEY])
        except CacheError as exc:
            log.warning("rbac_cache_unavailable", error=str(exc))
            return None
        if value is None or value.startswith(_PENDING):
            return None  # a change is being committed: read the database
        return value.decode()

    def publish_change_on_commit(self, db: AsyncSession) -> None:
        """Publish a role change with ``db``'s transaction: the version is pending from
        just before the commit and replaced after it (or after a rollback).

        Raises (at commit time):
            ServiceUnavailable: 503, the pending version could not be written; the
                transaction is rolled back instead of committed.
        """
        before_commit(db, self._mark_pending)
        after_commit(db, self.publish_change)
        after_rollback(db, self.publish_change)

    async def _mark_pending(self) -> None:
        try:
            await self._cache.set(VERSION_KEY, _PENDING + uuid.uuid4().hex.encode(), _PENDING_TTL)
        except CacheError as exc:
            log.error("rbac_change_not_published", error=str(exc))
            raise ServiceUnavailable(
                "The role change could not be published to every node; nothing was changed. "
                "Try again shortly."
            ) from exc
        self._grants.clear()
        self._graphs.clear()

    async def publish_change(self) -> None:
        """Announce a role change to every node with a new version (after the change has
        committed; a failure leaves the pending version to expire)."""
        await publish_version(self._cache)
        self._grants.clear()
        self._graphs.clear()

    async def graph(self) -> RoleGraph:
        """The current role graph (cached per version)."""
        version = await self._version() if self._ttl > 0 else None
        if version is not None and (graph := self._graphs.get(version)) is not None:
            return graph
        async with self._sessionmaker() as db:
            graph = await RoleRepository(db).load_graph()
        if version is not None:
            self._graphs[version] = graph
        return graph

    async def grants_of(self, user_id: uuid.UUID) -> Grants:
        """The roles and effective permissions of ``user_id``.

        Cost when cached: one cache read (the version). On a miss: one query for the
        user's roles, plus three for the role graph if this node has not loaded it for
        the current version.
        """
        version = await self._version() if self._ttl > 0 else None
        if version is not None and (hit := self._grants.get((version, user_id))) is not None:
            return hit
        graph = self._graphs.get(version) if version is not None else None
        async with self._sessionmaker() as db:
            repo = RoleRepository(db)
            roles = await repo.role_names_of(user_id)
            if graph is None:
                graph = await repo.load_graph()
        grants = Grants(
            roles=tuple(roles),
            permissions=graph.permissions_of(roles),
            mfa_required_roles=graph.mfa_required_by(roles),
        )
        if version is not None:
            self._graphs[version] = graph
            self._grants[(version, user_id)] = grants
        return grants


def permission_resolver(ctx: AppContext) -> PermissionResolver:
    """The application's :class:`PermissionResolver` (``ctx.rbac``, typed for the domains
    as the narrower :class:`atrium.context.PermissionCache`)."""
    resolver = ctx.rbac
    assert isinstance(resolver, PermissionResolver)
    return resolver
