"""Who is asking, for audit events, without threading it through every service.

The edge middleware keeps the request's scope in a context variable
(:data:`atrium.core.middleware.current_scope`); the audit trail reads the client address
(after trusted-proxy resolution), ``User-Agent`` and the request id from it when an event
is recorded. Outside a request (CLI, workers) there is no scope.
"""

from __future__ import annotations

from dataclasses import dataclass

from atrium.core.client import client_from_scope
from atrium.core.middleware import current_scope


@dataclass(frozen=True)
class RequestMeta:
    ip_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


def current_request_meta() -> RequestMeta:
    """The current request's client address, user agent and request id (empty outside
    a request)."""
    scope = current_scope.get()
    if scope is None:
        return RequestMeta()
    client = client_from_scope(scope)
    state = scope.get("state") or {}
    return RequestMeta(
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        request_id=state.get("request_id"),
    )
