"""Infrastructure outages answered as 503 problem details: the database (driver and pool
errors, refused or reset connections) and the file storage. Registered next to the
handlers of :mod:`atrium.errors` by :func:`atrium.main.create_app`."""

from __future__ import annotations

import asyncpg
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from atrium.core.db import database_unavailable
from atrium.core.metrics import DB_POOL_TIMEOUTS
from atrium.core.storage import StorageError
from atrium.errors import ServiceUnavailable, problem_response

log = structlog.get_logger("atrium.errors")


def install_outage_handlers(app: FastAPI) -> None:
    """Register the 503 ``service_unavailable`` / ``storage_unavailable`` handlers."""

    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        if not database_unavailable(exc):
            # A defect (an integrity error nobody expected, a bad statement): the edge
            # answers 500 and the error is logged with the request id.
            raise exc
        log.warning("database_unavailable", error=type(exc).__name__)
        if isinstance(exc, sa_exc.TimeoutError):
            DB_POOL_TIMEOUTS.inc()
        err = ServiceUnavailable("The database is not reachable; try again shortly.")
        return problem_response(
            status=err.status,
            code=err.code,
            title=err.title,
            detail=err.detail,
            headers=err.headers,
        )

    async def _storage_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("storage_unavailable", error=type(exc).__name__, detail=str(exc))
        err = ServiceUnavailable("The file storage is not reachable; try again shortly.")
        return problem_response(
            status=err.status,
            code="storage_unavailable",
            title=err.title,
            detail=err.detail,
            headers=err.headers,
        )

    app.add_exception_handler(StorageError, _storage_unavailable)
    # Every error type a database outage can surface as: SQLAlchemy's wrapped driver errors
    # (DBAPIError and its subclasses: "the database system is shutting down", "connection
    # was closed in the middle of operation", "another operation is in progress", …), pool
    # time-outs, the driver's own errors where they escape unwrapped, and refused or reset
    # connections and client-side time-outs (OSError). core.db.database_unavailable sorts
    # outages (503) from defects (500).
    for error_type in (
        sa_exc.DBAPIError,
        sa_exc.TimeoutError,
        sa_exc.PendingRollbackError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.exceptions.InternalClientError,
        OSError,
    ):
        app.add_exception_handler(error_type, _database_unavailable)
