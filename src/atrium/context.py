"""The application's long-lived services, built once by the lifespan and shared by requests."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from atrium.auth.principal import PrincipalStore
from atrium.config import Settings
from atrium.core.cache import Cache
from atrium.core.clock import Clock
from atrium.core.passwords import PasswordHasher
from atrium.core.ratelimit import RateLimiter
from atrium.core.storage import Storage
from atrium.core.tokens import TokenService
from atrium.rbac.resolver import PermissionResolver


@dataclass
class AppContext:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    cache: Cache
    hasher: PasswordHasher
    tokens: TokenService
    principals: PrincipalStore
    ratelimiter: RateLimiter
    rbac: PermissionResolver
    storage: Storage
    started_at: float = field(default_factory=time.monotonic)


async def get_context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


Ctx = Annotated[AppContext, Depends(get_context)]
