"""Application errors and their rendering as RFC 9457 problem details.

Every error a client can cause is an :class:`AppError` subclass with an HTTP status and a
stable machine ``code``. One set of handlers renders them, request validation failures,
routing errors and infrastructure outages as ``application/problem+json``::

    {"type": "about:blank", "title": "...", "status": 409, "detail": "...",
     "code": "email_taken", "errors": [...]}
"""

from __future__ import annotations

from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class ProblemDetails(BaseModel):
    """RFC 9457 problem details as Atrium sends them."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    code: str
    errors: list[dict[str, Any]] | None = None


class AppError(Exception):
    """Base of every client-visible error: a status, a stable code and a title."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"
    # When True the request's unit of work commits before the error is answered: for
    # errors that must leave a trace, such as revoking a session on refresh-token reuse.
    preserve_changes: ClassVar[bool] = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}


class NotAuthenticated(AppError):
    status = 401
    code = "not_authenticated"
    title = "Authentication required"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidToken(AppError):
    status = 401
    code = "invalid_token"
    title = "Invalid token"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class NotFound(AppError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(AppError):
    status = 409
    code = "conflict"
    title = "Conflict"


class ValidationFailed(AppError):
    """The request body or parameters do not match the schema (rendered from
    FastAPI's RequestValidationError)."""

    status = 422
    code = "validation_error"
    title = "Invalid request"


class ServiceUnavailable(AppError):
    status = 503
    code = "service_unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Render a problem+json response (RFC 9457 §3)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "code": code}
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error types, grouped by status."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        entry = out.setdefault(
            err.status,
            {
                "description": "",
                "content": {PROBLEM_JSON: {"schema": ProblemDetails.model_json_schema()}},
            },
        )
        codes = [c for c in entry["description"].split(", ") if c]
        codes.append(f"`{err.code}`")
        entry["description"] = ", ".join(codes)
    return out


_HTTP_CODES = {
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        # Never echo the submitted value: it may be a password.
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "type": err.get("type"),
                "msg": err.get("msg"),
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(
            status=ValidationFailed.status,
            code=ValidationFailed.code,
            title=ValidationFailed.title,
            detail="The request body or parameters are not valid.",
            errors=_clean_validation_errors(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        return problem_response(
            status=exc.status_code,
            code=code,
            title=title,
            detail=exc.detail if isinstance(exc.detail, str) else None,
            headers=dict(exc.headers) if exc.headers else None,
        )

    async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error=type(exc).__name__)
        if isinstance(exc, sa_exc.TimeoutError):
            from atrium.core.metrics import DB_POOL_TIMEOUTS

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

    from atrium.core.storage import StorageError

    app.add_exception_handler(StorageError, _storage_unavailable)
    app.add_exception_handler(sa_exc.OperationalError, _database_unavailable)
    app.add_exception_handler(sa_exc.InterfaceError, _database_unavailable)
    app.add_exception_handler(sa_exc.TimeoutError, _database_unavailable)
    # Refused connections, unresolvable hosts and connect time-outs (all OSError).
    app.add_exception_handler(OSError, _database_unavailable)

    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Runs in Starlette's outermost error middleware. The edge middleware has already
        # answered the 500 (with every header), so this response is only a fallback; the
        # point is the log line with the request id.
        request_id = request.scope.get("state", {}).get("request_id")
        log.error("unhandled_error", error=type(exc).__name__, request_id=request_id)
        return problem_response(status=500, code="internal_error", title="Internal server error")

    app.add_exception_handler(Exception, _internal_error)
