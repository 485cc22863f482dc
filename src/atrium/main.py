"""Application factory: ``create_app(settings) -> FastAPI``.

The lifespan builds the long-lived services (engine, cache, password hasher, signing key,
principal store) into :class:`atrium.context.AppContext` and disposes of them at shutdown.
Migrations and the first admin are handled by ``atrium serve`` before workers start
(see :mod:`atrium.bootstrap`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from atrium import __version__
from atrium.api import include_api
from atrium.auth.principal import PrincipalStore
from atrium.auth.router import well_known_router
from atrium.config import Settings, get_settings
from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.cache import create_cache
from atrium.core.clock import Clock, SystemClock
from atrium.core.db import create_engine, create_sessionmaker
from atrium.core.logging import configure_logging
from atrium.core.middleware import EdgeMiddleware
from atrium.core.passwords import PasswordHasher
from atrium.core.ratelimit import RateLimiter
from atrium.core.sentry import init_sentry
from atrium.core.storage import create_storage
from atrium.core.tokens import (
    TokenService,
    load_or_create_signing_key,
    load_verification_keys,
)
from atrium.docs_ui.router import install_docs
from atrium.errors import install_error_handlers
from atrium.health.router import metrics_router
from atrium.health.router import router as health_router
from atrium.mail.transport import create_transport
from atrium.mail.worker import MailWorker
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
    verification_keys = await anyio.to_thread.run_sync(load_verification_keys, settings)
    return AppContext(
        settings=settings,
        clock=clock,
        engine=engine,
        sessionmaker=sessionmaker,
        cache=cache,
        hasher=hasher,
        tokens=TokenService(settings, signing_key, verification_keys),
        principals=PrincipalStore(cache, sessionmaker, settings),
        ratelimiter=RateLimiter(settings),
        rbac=PermissionResolver(cache, sessionmaker, settings),
        storage=create_storage(settings),
    )


def upload_limits(settings: Settings) -> dict[tuple[str, str], int]:
    """Body limits of the upload routes, enforced by the edge while the body streams:
    the route's own limit plus the multipart framing allowance, capped by
    ``http.upload_max_body_bytes``. Every other route keeps ``http.max_body_bytes``."""
    http = settings.http

    def limit(payload: int) -> int:
        return min(payload + http.multipart_overhead_bytes, http.upload_max_body_bytes)

    return {
        ("PUT", "/api/v1/users/me/avatar"): limit(settings.avatars.max_bytes),
        ("POST", "/api/v1/files"): limit(settings.files.max_bytes),
    }


def freeze_startup_objects() -> None:
    """Collect once, then move every surviving object (modules, routes, models, the
    context) into the collector's permanent generation (``gc.freeze``, Python 3.7+).

    Without it each full (generation 2) collection traverses the ~190,000 objects of the
    loaded application: measured at about 100 ms each, three times a second under 32
    concurrent ``GET /users/me`` with the Redis cache (requests awaiting Redis survive the
    young collections and keep triggering full ones), which set p90 at ~70 ms and p99 at
    ~115 ms. Frozen, a full collection sees only what requests create (about 4,000 objects,
    1 ms). See docs/benchmarks.md.
    """
    gc.collect()
    gc.freeze()


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """The Atrium ASGI application. ``clock`` is injectable for tests."""
    settings = settings or get_settings()
    clock = clock or SystemClock()
    configure_logging(settings)
    init_sentry(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings, clock)
        app.state.ctx = ctx
        app.state.sessionmaker = ctx.sessionmaker
        metrics.register_pool(ctx.engine.pool)
        # Embedded default: the API process delivers the outbox itself (mail.worker_in_api).
        worker = mail_task = None
        if settings.mail.worker_in_api:
            worker = MailWorker(ctx.sessionmaker, settings, clock, create_transport(settings))
            mail_task = asyncio.create_task(worker.run(), name="atrium-mail-worker")
        if settings.gc_freeze:
            freeze_startup_objects()
        try:
            yield
        finally:
            if worker is not None and mail_task is not None:
                worker.stop()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(mail_task, worker.shutdown_grace_seconds)
            metrics.unregister_pool(ctx.engine.pool)
            ctx.hasher.close()
            await ctx.cache.close()
            await ctx.storage.close()
            await ctx.ratelimiter.close()
            await ctx.engine.dispose()

    app = FastAPI(
        title=settings.product_name,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    install_error_handlers(app)
    if settings.http.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.http.cors_origins,
            allow_credentials=settings.http.cors_allow_credentials,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ],
            max_age=600,
        )
    # Added last, so outermost: CORS answers and errors get its headers and log line too.
    app.add_middleware(
        EdgeMiddleware, settings=settings.http, upload_limits=upload_limits(settings)
    )
    install_docs(app)
    app.include_router(health_router)
    if settings.metrics.enabled:
        app.include_router(metrics_router)
    app.include_router(well_known_router)
    include_api(app)
    return app
