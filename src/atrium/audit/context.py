"""Who is asking, for audit events, without threading it through every service.

A pure ASGI middleware keeps the request's scope in a context variable; the audit trail
reads the client address, ``User-Agent`` and the request id (``scope["state"]
["request_id"]``, set by :class:`atrium.core.middleware.RequestIdMiddleware`) from it
when an event is recorded. Outside a request (CLI, workers) there is no scope.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

_scope: ContextVar[Scope | None] = ContextVar("atrium_audit_scope", default=None)


@dataclass(frozen=True)
class RequestMeta:
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


class AuditContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _scope.set(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            _scope.reset(token)


def current_request_meta() -> RequestMeta:
    """The current request's client address, user agent and request id (empty outside
    a request)."""
    scope = _scope.get()
    if scope is None:
        return RequestMeta()
    client = scope.get("client")
    user_agent = None
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            user_agent = value.decode("latin-1")[:512]
            break
    state = scope.get("state") or {}
    return RequestMeta(
        ip_address=client[0] if client else None,
        user_agent=user_agent,
        request_id=state.get("request_id"),
    )
