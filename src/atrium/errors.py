"""Application errors and their rendering as RFC 9457 problem details.

Every error a client can cause is an :class:`AppError` subclass with an HTTP status and a
stable machine ``code``. One set of handlers renders them, request validation failures,
routing errors and infrastructure outages as ``application/problem+json``::

    {"type": "about:blank", "title": "...", "status": 409, "detail": "...",
     "code": "email_taken", "errors": [...]}
"""

from __future__ import annotations

import copy
import functools
from typing import Any, ClassVar

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
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
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors = errors
        self.headers = headers or {}
        # RFC 9457 §3.2 extension members, added to the problem object.
        self.extensions = extensions or {}


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
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    """Render a problem+json response (RFC 9457 §3; ``extensions`` are §3.2 members)."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "code": code}
    if detail is not None:
        body["detail"] = detail
    if errors is not None:
        body["errors"] = errors
    for name, value in (extensions or {}).items():
        body.setdefault(name, value)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_JSON)


def problem_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`ProblemDetails`, for an OpenAPI ``content`` entry: a copy
    of the one generated once per process (~1 ms each time, and every router asks for it
    at import), which the caller may change."""
    return copy.deepcopy(_problem_schema())


@functools.cache
def _problem_schema() -> dict[str, Any]:
    return ProblemDetails.model_json_schema()


def problem_responses(*errors: type[AppError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error types, grouped by status."""
    out: dict[int | str, dict[str, Any]] = {}
    for err in errors:
        entry = out.setdefault(
            err.status,
            {
                "description": "",
                "content": {PROBLEM_JSON: {"schema": problem_schema()}},
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
    422: ("validation_error", "Invalid request"),
}


def _clean_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        # Never echo the submitted value: it may be a password.
        out.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "type": err.get("type"),
                # pydantic prefixes the message of a ValueError raised by a validator.
                "msg": str(err.get("msg", "")).removeprefix("Value error, "),
            }
        )
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app`` (the infrastructure outages, database
    and storage, are :func:`atrium.core.outages.install_outage_handlers`)."""

    @app.exception_handler(AppError)
    async def _app_error(_: Request, exc: AppError) -> JSONResponse:
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            errors=exc.errors,
            headers=exc.headers,
            extensions=exc.extensions,
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
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path only;
            # RFC 9110 §15.5.6 wants every method of the resource.
            # ``atrium.openapi.install_openapi`` registers the lookup (errors sit below it).
            lookup = getattr(request.app.state, "allowed_methods", None)
            methods = lookup(request.url.path) if lookup is not None else None
            if methods:
                headers["Allow"] = ", ".join(methods)
        return problem_response(
            status=exc.status_code,
            code=code,
            title=title,
            detail=exc.detail if isinstance(exc.detail, str) else None,
            headers=headers or None,
        )

    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        # Runs in Starlette's outermost error middleware. The edge middleware has already
        # answered the 500 (with every header), so this response is only a fallback; the
        # point is the log line with the request id.
        request_id = request.scope.get("state", {}).get("request_id")
        log.error("unhandled_error", error=type(exc).__name__, request_id=request_id)
        return problem_response(status=500, code="internal_error", title="Internal server error")

    app.add_exception_handler(Exception, _internal_error)
