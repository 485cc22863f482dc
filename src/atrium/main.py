"""Application factory: ``create_app(settings) -> FastAPI``.

The lifespan builds the long-lived services (engine, cache, password hasher, signing key,
principal store) into :class:`atrium.context.AppContext` and disposes of them at shutdown.
Migrations and the first admin are handled by ``atrium serve`` before workers start
(see :mod:`atrium.bootstrap`).
"""

from __future__ import annotations

# isort: off
# Before any other import: the collector waits until the application is loaded (the
# end of this module).
from atrium.core import startup_gc

# isort: on
import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from atrium import __version__
from atrium.activity.service import flush_periodically
from atrium.api import API_PREFIX, include_api
from atrium.audit.service import register_actions
from atrium.auth.browser_principal import SessionStore
from atrium.auth.router import well_known_router
from atrium.config import Settings, get_settings, metrics_exposure_problem
from atrium.context import AppContext
from atrium.core import metrics
from atrium.core.activity import ActivityBuffer
from atrium.core.apps import LoadedApp, declared_apps, read_settings
from atrium.core.bus import create_bus
from atrium.core.cache import RedisBreaker, create_cache
from atrium.core.clock import Clock, SystemClock
from atrium.core.db import create_engine, create_sessionmaker
from atrium.core.jobs import JobContext, JobRunner
from atrium.core.leased_worker import LeasedWorker
from atrium.core.logging import configure_logging
from atrium.core.middleware import EdgeMiddleware
from atrium.core.outages import install_outage_handlers
from atrium.core.passwords import PasswordHasher
from atrium.core.ratelimit import RateLimiter
from atrium.core.sentry import init_sentry
from atrium.core.storage import create_storage
from atrium.core.templates import register_templates
from atrium.core.tokens import (
    TokenService,
    load_or_create_signing_key,
    load_verification_keys,
)
from atrium.docs_ui.router import install_docs
from atrium.errors import install_error_handlers
from atrium.events.catalogue import register_event_types
from atrium.events.dispatcher import EventDispatcher
from atrium.health.router import metrics_router
from atrium.health.router import router as health_router
from atrium.mail.render import register_mail_templates
from atrium.mail.transport import create_transport
from atrium.mail.worker import MailWorker
from atrium.notifications.notices import register_notices
from atrium.notifications.realtime import install_revocation_relay
from atrium.openapi import install_openapi
from atrium.rbac.permissions import register_permissions
from atrium.rbac.resolver import PermissionResolver
from atrium.ui.rendering import register_page_catalogs
from atrium.ui.router import UPLOAD_PATHS, install_app_pages, install_ui
from atrium.webhooks.worker import WebhookWorker
from atrium.workers import event_consumers, platform_jobs, shutdown_grace_seconds

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
    redis_breaker = RedisBreaker(settings.redis.breaker_cooldown_seconds)
    cache = create_cache(settings, redis_breaker)
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
        principals=SessionStore(cache, sessionmaker, settings),
        ratelimiter=RateLimiter(settings, redis_breaker),
        rbac=PermissionResolver(cache, sessionmaker, settings),
        storage=create_storage(settings),
        redis_breaker=redis_breaker,
        bus=create_bus(
            settings.redis.url, settings.redis.key_prefix, settings.redis.socket_timeout_seconds
        ),
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
        # Imports of accounts: up to the upload cap (larger files: `atrium import users`).
        ("POST", "/api/v1/admin/users/import"): http.upload_max_body_bytes,
        **{path: limit(settings.avatars.max_bytes) for path in UPLOAD_PATHS},
    }


def freeze_startup_objects() -> None:
    """Collect once, then move every surviving object (the application, its routes, the
    context) into the collector's permanent generation (``gc.freeze``, Python 3.7+); the
    loaded modules were moved there at the end of their import
    (:mod:`atrium.core.startup_gc`).

    Without it each full (generation 2) collection traverses the ~190,000 objects of the
    loaded application: measured at about 100 ms each, three times a second under 32
    concurrent ``GET /users/me`` with the Redis cache (requests awaiting Redis survive the
    young collections and keep triggering full ones), which set p90 at ~70 ms and p99 at
    ~115 ms. Frozen, a full collection sees only what requests create (about 4,000 objects,
    1 ms). See docs/benchmarks.md.
    """
    gc.collect()
    gc.freeze()


def load_apps(settings: Settings) -> list[LoadedApp]:
    """Import the applications of ``ATRIUM_APPS`` and register what they declare:
    permissions in the RBAC catalogue, audit actions, templates; their settings are read
    here, so a bad value stops start-up. Routers are mounted by :func:`create_app`.

    Raises:
        AppLoadError: an application cannot be loaded (one line naming it).
    """
    loaded = []
    for declared in declared_apps(settings.apps):
        register_permissions(declared.permissions)
        register_actions(declared.audit_actions)
        register_event_types(declared.event_types())
        register_notices(declared.notices())
        if declared.templates is not None:
            register_templates(declared.name, declared.templates)
            if declared.mail_templates:
                mail = declared.templates / "mail"
                register_mail_templates(declared.name, mail, declared.mail_templates)
        if declared.locale is not None:
            register_page_catalogs(declared.locale)
        loaded.append(LoadedApp(declared, read_settings(declared)))
    return loaded


def job_runner(
    settings: Settings,
    clock: Clock,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    apps: dict[str, LoadedApp],
) -> JobRunner | None:
    """The runner of the platform's scheduled jobs and of every job the running
    applications declare."""
    jobs = platform_jobs(settings) + [job for loaded in apps.values() for job in loaded.app.jobs()]
    if not jobs:
        return None
    return JobRunner(jobs, JobContext(settings, clock, engine, sessionmaker, apps))


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> FastAPI:
    """The Atrium ASGI application. ``clock`` is injectable for tests."""
    settings = settings or get_settings()
    clock = clock or SystemClock()
    problem = metrics_exposure_problem(settings)
    if problem is not None:
        # `atrium serve` says this in one line before starting; this guards other servers.
        raise RuntimeError(problem)
    configure_logging(settings)
    init_sentry(settings)

    apps = load_apps(settings)
    # Activity counters of this process (no database write per request): the edge adds
    # to them, a task of the lifespan flushes them (atrium.activity.service).
    activity = ActivityBuffer(
        enabled=settings.activity.enabled,
        ipv4_prefix=settings.activity.ipv4_prefix,
        ipv6_prefix=settings.activity.ipv6_prefix,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings, clock)
        ctx.apps = {loaded.app.name: loaded for loaded in apps}
        ctx.activity = activity
        app.state.ctx = ctx
        app.state.sessionmaker = ctx.sessionmaker
        metrics.register_pool(ctx.engine.pool)
        # Embedded default: the API process delivers the outbox, dispatches events and runs
        # the scheduled jobs itself (mail.worker_in_api, events.worker_in_api).
        workers: list[LeasedWorker] = []
        runner = jobs_task = None
        if settings.mail.worker_in_api:
            workers.append(
                MailWorker(ctx.sessionmaker, settings, clock, create_transport(settings))
            )
            runner = job_runner(ctx.settings, clock, ctx.engine, ctx.sessionmaker, ctx.apps)
            if runner is not None:
                jobs_task = asyncio.create_task(runner.run(), name="atrium-jobs")
        if settings.events.worker_in_api:
            consumers = event_consumers(settings, clock, ctx.sessionmaker, ctx.bus)
            workers.append(EventDispatcher(ctx.sessionmaker, settings, clock, consumers))
            workers.append(WebhookWorker(ctx.sessionmaker, settings, clock))
        tasks = [asyncio.create_task(w.run(), name=f"atrium-{w.name}-worker") for w in workers]
        flushing = asyncio.Event()
        flush_task = asyncio.create_task(
            flush_periodically(
                ctx.sessionmaker,
                activity,
                clock,
                settings.activity.flush_interval_seconds,
                flushing,
            ),
            name="atrium-activity-flush",
        )
        stop_relay = install_revocation_relay(ctx.bus)
        if settings.gc_freeze:
            freeze_startup_objects()
        try:
            yield
        finally:
            flushing.set()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(flush_task, 10)
            if runner is not None and jobs_task is not None:
                runner.stop()
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(jobs_task, shutdown_grace_seconds(workers, settings))
            for w in workers:
                w.stop()
            if tasks:
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(
                        asyncio.gather(*tasks), shutdown_grace_seconds(workers, settings)
                    )
            stop_relay()
            await ctx.bus.close()
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
        openapi_url="/openapi.json" if settings.api_docs_enabled else None,
        swagger_ui_parameters={"persistAuthorization": True},
    )
    install_error_handlers(app)
    install_outage_handlers(app)
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
        EdgeMiddleware,
        settings=settings.http,
        upload_limits=upload_limits(settings),
        activity=activity,
        now=clock.now,
    )
    if settings.api_docs_enabled:
        install_docs(app)
    app.include_router(health_router)
    if settings.metrics.enabled and settings.metrics.port is None:
        app.include_router(metrics_router)
    app.include_router(well_known_router)
    include_api(app)
    for loaded in apps:
        for router in loaded.app.routers():
            app.include_router(router, prefix=API_PREFIX)
    if settings.ui.enabled:
        install_ui(app)
        for loaded in apps:
            install_app_pages(app, loaded.app.pages())
    install_openapi(
        app,
        password_lengths=(settings.auth.password_min_length, settings.auth.password_max_length),
    )
    return app


def create_metrics_app(settings: Settings | None = None) -> FastAPI:
    """The separate ``/metrics`` listener (``metrics.port``): Prometheus exposition of every
    API process (prometheus-client multiprocess mode) and nothing else."""
    settings = settings or get_settings()
    configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings, SystemClock())
        app.state.ctx = ctx
        try:
            yield
        finally:
            ctx.hasher.close()
            await ctx.cache.close()
            await ctx.storage.close()
            await ctx.ratelimiter.close()
            await ctx.engine.dispose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    install_error_handlers(app)
    app.include_router(metrics_router)
    return app


# Everything above is loaded: the collector runs again.
startup_gc.resume()
