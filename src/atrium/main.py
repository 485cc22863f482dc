"""Application factory: ``create_app(settings) -> FastAPI``.

The lifespan builds the long-lived services (engine, cache, password hasher, signing key,
principal store) into :class:`atrium.context.AppContext` and disposes of them at shutdown.
Migrations and the first admin are handled by ``atrium serve`` before workers start
(see :mod:`atrium.bootstrap`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from atrium import __version__
from atrium.api import api_router
from atrium.audit.context import AuditContextMiddleware
from atrium.auth.principal import PrincipalStore
from atrium.auth.router import well_known_router
from atrium.config import Settings, get_settings
from atrium.context import AppContext
from atrium.core.cache import create_cache
from atrium.core.clock import Clock, SystemClock
from atrium.core.db import create_engine, create_sessionmaker
from atrium.core.logging import configure_logging
from atrium.core.middleware import RequestIdMiddleware
from atrium.core.passwords import PasswordHasher
from atrium.core.tokens import TokenService, load_or_create_signing_key
from atrium.errors import install_error_handlers
from atrium.health.router import router as health_router
from atrium.rbac.resolver import PermissionResolver

DESCRIPTION = """
Atrium is a self-hostable user and identity backend.

Authenticate with **Authorize**: log in with your email as `username` and your password
(OAuth2 password flow); the access token is sent as `Authorization: Bearer …`.
Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`.
"""


async def build_context(settings: Settings, clock: Clock) -> AppContext:
    """Create every long-lived service for ``settings``."""
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    cache = create_cache(settings)
    hasher = await anyio.to_thread.run_sync(PasswordHasher, settings.auth)
    signing_key = await anyio.to_thread.run_sync(load_or_create_signing_key, settings)
    return AppContext(
        settings=settings,
        clock=clock,
        engine=engine,
        sessionmaker=sessionmaker,
        cache=cache,
        hasher=hasher,
        tokens=TokenService(settings, signing_key),
        principals=PrincipalStore(cache, sessionmaker, settings),
        rbac=PermissionResolver(cache, sessionmaker, settings),
    )


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """The Atrium ASGI application. ``clock`` is injectable for tests."""
    settings = settings or get_settings()
    clock = clock or SystemClock()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings, clock)
        app.state.ctx = ctx
        app.state.sessionmaker = ctx.sessionmaker
        try:
            yield
        finally:
            await ctx.cache.close()
            await ctx.engine.dispose()

    app = FastAPIOffline(
        title=settings.product_name,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    install_error_handlers(app)
    app.add_middleware(AuditContextMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(health_router)
    app.include_router(well_known_router)
    app.include_router(api_router)
    return app
