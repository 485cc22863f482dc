"""Who the client is: its address and user agent, worked out once from the ASGI scope."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Longest user agent kept (sessions list, audit trail); longer ones are cut.
MAX_USER_AGENT = 512


@dataclass(frozen=True)
class ClientInfo:
    """The client of a request: ``ip_address`` as the edge middleware resolved it (behind
    ``http.trusted_proxies``), ``user_agent`` cut to :data:`MAX_USER_AGENT` characters;
    either is None when unknown or empty."""

    ip_address: str | None
    user_agent: str | None


def client_from_scope(scope: Mapping[str, Any]) -> ClientInfo:
    """The :class:`ClientInfo` of an ASGI HTTP ``scope``."""
    client = scope.get("client")
    user_agent = None
    for name, value in scope.get("headers", ()):
        if name == b"user-agent":
            user_agent = value.decode("latin-1")[:MAX_USER_AGENT] or None
            break
    return ClientInfo(ip_address=client[0] if client else None, user_agent=user_agent)
