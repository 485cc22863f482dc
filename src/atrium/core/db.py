"""Engine, sessions and the one commit point.

The request-scoped session (:data:`DbSession`) commits when the route returns and rolls
back when it raises, before the response is sent; services call ``flush()`` when they
need generated values and never ``commit()``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import structlog
from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from atrium.config import Settings

log = structlog.get_logger(__name__)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(settings: Settings, *, statement_timeouts: bool = True) -> AsyncEngine:
    """Build the async engine for ``settings.database_url``.

    SQLite (embedded default): WAL journal, foreign keys on, a 5 s busy timeout, and
    ``BEGIN IMMEDIATE`` transactions so that concurrent writers queue on the lock instead
    of failing with "database is locked" when a read transaction upgrades to a write.

    PostgreSQL: a bounded pool with pre-ping, so the service recovers by itself after a
    database restart; connections that broke are discarded, never reused
    (:func:`connection_broken`). Every statement is bounded on the client
    (``database.command_timeout_seconds``, asyncpg's ``command_timeout``) and on the server
    (``statement_timeout``, ``idle_in_transaction_session_timeout``), and both ends of each
    connection send TCP keepalives, so a database that stops answering — a network
    partition drops packets rather than refusing them — costs a request at most a bounded
    wait before its 503 (docs/operations.md). ``statement_timeouts=False`` lifts the
    statement bounds for maintenance commands that run long on purpose (seed, purge).
    ``max_parallel_workers_per_gather`` is set per connection from
    ``database.parallel_workers_per_gather`` (0 by default: the admin list's pages measured
    two to three times slower at 1M users when PostgreSQL started parallel workers for
    them; docs/benchmarks.md).
    """
    url = settings.database_url
    if is_sqlite(url):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=settings.database.echo)
        _configure_sqlite(engine)
        return engine
    db = settings.database
    server_settings = {}
    if db.parallel_workers_per_gather >= 0:
        server_settings["max_parallel_workers_per_gather"] = str(db.parallel_workers_per_gather)
    if statement_timeouts and db.statement_timeout_seconds > 0:
        server_settings["statement_timeout"] = str(int(db.statement_timeout_seconds * 1000))
    if db.idle_in_transaction_timeout_seconds > 0:
        server_settings["idle_in_transaction_session_timeout"] = str(
            int(db.idle_in_transaction_timeout_seconds * 1000)
        )
    keepalives = {
        "tcp_keepalives_idle": db.tcp_keepalives_idle_seconds,
        "tcp_keepalives_interval": db.tcp_keepalives_interval_seconds,
        "tcp_keepalives_count": db.tcp_keepalives_count,
    }
    server_settings.update({name: str(value) for name, value in keepalives.items() if value})
    engine = create_async_engine(
        url,
        echo=db.echo,
        pool_size=db.pool_size,
        max_overflow=db.max_overflow,
        pool_timeout=db.pool_timeout_seconds,
        pool_recycle=db.pool_recycle_seconds,
        pool_pre_ping=True,
        connect_args={
            "timeout": db.connect_timeout_seconds,
            "command_timeout": db.command_timeout_seconds if statement_timeouts else None,
            "server_settings": server_settings,
        },
    )
    event.listen(engine.sync_engine, "handle_error", _discard_broken_connections)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _set_client_keepalive(dbapi_connection.driver_connection, keepalives)

    return engine


def _set_client_keepalive(connection: Any, keepalives: dict[str, int]) -> None:
    """TCP keepalive on the client's socket (asyncpg has no option for it), with the same
    idle time, interval and count as the server's ``tcp_keepalives_*``; and
    ``TCP_USER_TIMEOUT`` (Linux), so that data left unacknowledged by a peer that vanished
    fails the connection after the same total instead of the kernel's ~15 minutes."""
    transport = getattr(connection, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket: no network in between
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options = {
        "tcp_keepalives_idle": getattr(socket, "TCP_KEEPIDLE", None),
        "tcp_keepalives_interval": getattr(socket, "TCP_KEEPINTVL", None),
        "tcp_keepalives_count": getattr(socket, "TCP_KEEPCNT", None),
    }
    for name, option in options.items():
        if option is not None and keepalives[name]:
            sock.setsockopt(socket.IPPROTO_TCP, option, keepalives[name])
    idle, interval, count = keepalives.values()
    user_timeout = getattr(socket, "TCP_USER_TIMEOUT", None)
    if user_timeout is not None and idle and interval and count:
        sock.setsockopt(socket.IPPROTO_TCP, user_timeout, (idle + interval * count) * 1000)


# SQLSTATEs (PostgreSQL Appendix A) meaning the server cannot serve this connection now:
# connection exceptions (class 08), insufficient resources (53: too many connections, out
# of memory, disk full), shutdown or start-up (57P01 admin_shutdown, 57P02 crash_shutdown,
# 57P03 cannot_connect_now, 57P04 database_dropped), system errors (58: I/O error).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "58")
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "57P04"})
# The server cancelled the statement (statement_timeout, or an operator's cancel) or ended
# an idle transaction: the connection is fine, the database was too slow to answer.
_TIMEOUT_SQLSTATES = frozenset({"57014", "25P03"})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error it wraps, and their causes (each once)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.append(current.__cause__)
        if isinstance(current, sa_exc.StatementError):
            todo.append(current.orig)


def _driver_connection_broken(exc: BaseException) -> bool:
    """True for driver errors after which the connection must not be used again."""
    import asyncpg

    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES or sqlstate in _UNAVAILABLE_SQLSTATES
    if isinstance(exc, asyncpg.InterfaceError):
        # "connection is closed", "another operation is in progress", … — but not bad
        # input (DataError) or a configuration mistake, which are no outage.
        return not isinstance(
            exc,
            asyncpg.exceptions.DataError
            | asyncpg.exceptions.ClientConfigurationError
            | asyncpg.exceptions.UnsupportedClientFeatureError
            | asyncpg.exceptions.UnsupportedServerFeatureError,
        )
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # "cannot switch to state N; another operation is in progress": the protocol state
        # of this connection is lost. Stale prepared statements are handled by SQLAlchemy.
        return not isinstance(exc, asyncpg.exceptions.OutdatedSchemaCacheError)
    # Reset, refused, unreachable (OSError) and client-side time-outs (TimeoutError is an
    # OSError since Python 3.11, asyncio's too).
    return isinstance(exc, OSError | ConnectionError)


def connection_broken(exc: BaseException) -> bool:
    """True when ``exc`` (a SQLAlchemy or driver error, or one caused by such an error)
    means that the database connection it came from is unusable: the server shut down,
    crashed, is starting up, refused or reset the connection, or did not answer in time."""
    for cause in _causes(exc):
        if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
            return True
        if _driver_connection_broken(cause):
            return True
    return False


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means "the database cannot answer now" rather than a defect or bad
    input: a broken connection (:func:`connection_broken`), a statement the server
    cancelled for taking too long (``statement_timeout``), a pool time-out, SQLite's
    ``database is locked``, or a transaction left unusable by one of those.

    The HTTP layer answers these with 503 ``service_unavailable`` and ``Retry-After``
    (:mod:`atrium.errors`); anything else remains a 500.
    """
    import asyncpg

    for cause in _causes(exc):
        if isinstance(cause, sa_exc.TimeoutError | sa_exc.OperationalError):
            return True
        if isinstance(cause, sa_exc.PendingRollbackError) and "invalid transaction" in str(cause):
            return True  # the connection was invalidated by an earlier error of this request
        if isinstance(cause, asyncpg.PostgresError) and cause.sqlstate in _TIMEOUT_SQLSTATES:
            return True
    return connection_broken(exc)


def _discard_broken_connections(context: ExceptionContext) -> None:
    """SQLAlchemy ``handle_error`` hook: mark every broken-connection error as a
    disconnect, so that the connection is invalidated (closed, never returned to the pool)
    rather than handed to the next request.

    SQLAlchemy's own asyncpg detection covers only a connection already closed; a server
    shutting down (57P01), a protocol left mid-operation ("another operation is in
    progress") or a statement that timed out on the client would otherwise go back to the
    pool. When the server itself is gone or did not answer, every other pooled connection
    is stale too and the whole pool is invalidated (each is replaced at its next checkout);
    a single corrupt connection is discarded alone.
    """
    if context.is_disconnect or not connection_broken(context.original_exception):
        return
    context.is_disconnect = True
    context.invalidate_pool_on_disconnect = _server_gone(context.original_exception)
    log.warning(
        "database_connection_discarded",
        error=type(context.original_exception).__name__,
        whole_pool=context.invalidate_pool_on_disconnect,
    )


def _server_gone(exc: BaseException) -> bool:
    import asyncpg

    for cause in _causes(exc):
        if isinstance(cause, asyncpg.InterfaceError | asyncpg.exceptions.InternalClientError):
            return False
    return True


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


_BEFORE_COMMIT = "atrium.before_commit"


def before_commit(session: AsyncSession, callback: Callable[[], Awaitable[None]]) -> None:
    """Run ``callback`` just before ``session``'s unit of work commits; if it raises, the
    unit of work rolls back instead and the error propagates (its ``after_rollback`` hooks
    run).

    For effects that must be in place before a change can be reported done, and without
    which it must not happen: announcing a revocation to every node (a 503 and no change
    when the announcement cannot be made). Pair it with ``after_rollback`` to withdraw the
    announcement if the commit then fails.
    """
    session.info.setdefault(_BEFORE_COMMIT, []).append(callback)


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
    session.info.pop(_BEFORE_COMMIT, None)
    session.info.pop(_AFTER_COMMIT, None)
    callbacks = session.info.pop(_AFTER_ROLLBACK, [])
    try:
        await session.rollback()
    finally:
        # Also when the rollback itself fails (the connection broke): the server has
        # discarded the transaction either way.
        for callback in callbacks:
            await callback()


async def _commit(session: AsyncSession) -> None:
    try:
        for callback in session.info.pop(_BEFORE_COMMIT, []):
            await callback()
        await session.commit()
    except BaseException:
        await _rollback(session)
        raise
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
        except BaseException as exc:
            if getattr(exc, "preserve_changes", False):
                await _commit(session)
            else:
                await _rollback(session)
            raise
        await _commit(session)  # rolls back itself if a hook or the commit fails


async def _request_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


# scope="function": commit (or roll back) after the route returns and before the response
# is sent, so a failed commit is the client's answer, never a 201 for lost data.
DbSession = Annotated[AsyncSession, Depends(_request_session, scope="function")]
