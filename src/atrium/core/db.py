"""Engine, sessions and the one commit point.

The request-scoped session (:data:`DbSession`) commits when the route returns and rolls
back when it raises, before the response is sent; services call ``flush()`` when they
need generated values and never ``commit()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from atrium.config import Settings


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(settings: Settings) -> AsyncEngine:
    """Build the async engine for ``settings.database_url``.

    SQLite (embedded default): WAL journal, foreign keys on, a 5 s busy timeout, and
    ``BEGIN IMMEDIATE`` transactions so that concurrent writers queue on the lock instead
    of failing with "database is locked" when a read transaction upgrades to a write.
    PostgreSQL: a bounded pool with pre-ping, so the service recovers by itself after a
    database restart, and ``max_parallel_workers_per_gather`` set per connection from
    ``database.parallel_workers_per_gather`` (0 by default: the admin list's pages measured
    two to three times slower at 1M users when PostgreSQL started parallel workers for them;
    docs/benchmarks.md).
    """
    url = settings.database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=settings.database.echo)
        _configure_sqlite(engine)
        return engine
    server_settings = {}
    if settings.database.parallel_workers_per_gather >= 0:
        workers = str(settings.database.parallel_workers_per_gather)
        server_settings["max_parallel_workers_per_gather"] = workers
    return create_async_engine(
        url,
        echo=settings.database.echo,
        pool_size=settings.database.pool_size,
        max_overflow=settings.database.max_overflow,
        pool_timeout=settings.database.pool_timeout_seconds,
        pool_recycle=settings.database.pool_recycle_seconds,
        pool_pre_ping=True,
        connect_args={
            "timeout": settings.database.connect_timeout_seconds,
            "server_settings": server_settings,
        },
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


_AFTER_COMMIT = "atrium.after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` once ``session``'s unit of work has committed (never on rollback).

    For effects that other nodes must not see before the data is visible, such as
    invalidating a shared permission cache: done before the commit, a concurrent reader
    could cache the old rows again under the new key.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(callback)


_AFTER_ROLLBACK = "atrium.after_rollback"


def after_rollback(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` if ``session``'s unit of work rolls back (never after a commit).

    For compensating effects outside the database, such as deleting the storage objects
    of an upload whose row will never exist: nothing is left orphaned.
    """
    session.info.setdefault(_AFTER_ROLLBACK, []).append(callback)


async def _rollback(session: AsyncSession) -> None:
    session.info.pop(_AFTER_COMMIT, None)
    callbacks = session.info.pop(_AFTER_ROLLBACK, [])
    await session.rollback()
    for callback in callbacks:
        await callback()


async def _commit(session: AsyncSession) -> None:
    await session.commit()
    session.info.pop(_AFTER_ROLLBACK, None)
    callbacks = session.info.pop(_AFTER_COMMIT, [])
    for callback in callbacks:
        await callback()


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session that commits on success and rolls back on error (CLI, workers, startup).

    An error whose ``preserve_changes`` is true (see :class:`atrium.errors.AppError`) is
    committed before it propagates.
    """
    async with sessionmaker() as session:
        try:
            yield session
            await _commit(session)
        except BaseException as exc:
            if getattr(exc, "preserve_changes", False):
                await _commit(session)
            else:
                await _rollback(session)
            raise


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


# scope="function": commit (or roll back) after the route returns and before the response
# is sent, so a failed commit is the client's answer, never a 201 for lost data.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
