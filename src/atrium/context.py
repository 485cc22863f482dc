"""The application's long-lived services, built once by the lifespan and shared by requests.

This module sits in the foundation layer, under every domain: the two services that
domains own (auth's principal store, rbac's permission resolver) appear here as the
protocols other domains use, and ``main`` puts the real objects in at start-up.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from atrium.config import Settings
from atrium.core.activity import ActivityBuffer
from atrium.core.apps import LoadedApp
from atrium.core.bus import Bus, MemoryBus
from atrium.core.cache import Cache, RedisBreaker
from atrium.core.clock import Clock
from atrium.core.passwords import PasswordHasher
from atrium.core.ratelimit import RateLimiter
from atrium.core.storage import Storage
from atrium.core.tokens import TokenService


class PrincipalCache(Protocol):
    """The principal store (:class:`atrium.auth.principal.PrincipalStore`) as every domain
    uses it: drop cached sessions and account snapshots once a change has committed.
    Only ``auth`` needs more of it (``auth.principal.principal_store(ctx)``)."""

    def revoke_on_commit(self, db: AsyncSession, session_ids: Iterable[uuid.UUID]) -> None: ...

    def forget_users_on_commit(self, db: AsyncSession, user_ids: Iterable[uuid.UUID]) -> None: ...

    def distrust_api_keys_on_commit(
        self, db: AsyncSession, user_ids: Iterable[uuid.UUID]
    ) -> None: ...

    async def forget_users(self, user_ids: Iterable[uuid.UUID]) -> None: ...


class Grants(Protocol):
    """An account's roles and effective permissions."""

    @property
    def roles(self) -> tuple[str, ...]: ...

    @property
    def permissions(self) -> frozenset[str]: ...

    @property
    def mfa_required_roles(self) -> tuple[str, ...]:
        """The held roles that require a second factor (``role.mfa_required``, inherited)."""
        ...


class PermissionCache(Protocol):
    """The permission resolver (:class:`atrium.rbac.resolver.PermissionResolver`) as every
    domain uses it. Only ``rbac`` and above need the role graph
    (``rbac.resolver.permission_resolver(ctx)``)."""

    async def grants_of(self, user_id: uuid.UUID) -> Grants: ...

    def publish_change_on_commit(self, db: AsyncSession) -> None: ...

    async def publish_change(self) -> None: ...


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    hasher: PasswordHasher
    tokens: TokenService
    principals: PrincipalCache
    ratelimiter: RateLimiter
    rbac: PermissionCache
    storage: Storage
    redis_breaker: RedisBreaker | None = None
    # Live messages between nodes (Redis pub/sub; in-process without Redis).
    bus: Bus = field(default_factory=MemoryBus)
    # The applications built on Atrium that run in this process (ATRIUM_APPS), by name.
    apps: dict[str, LoadedApp] = field(default_factory=dict)
    started_at: float = field(default_factory=time.monotonic)
    # Activity counters of this process until the next flush (atrium.core.activity).
    activity: ActivityBuffer = field(default_factory=ActivityBuffer)


async def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]
