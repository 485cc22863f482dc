"""Errors of the API key domain."""

from __future__ import annotations

from atrium.errors import AppError, Conflict, NotFound


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "No such API key"


class UnknownScope(AppError):
    """A requested scope is not a permission of the catalogue."""

    status = 422
    code = "unknown_scope"
    title = "Unknown scope"


class ScopeNotHeld(AppError):
    """A requested scope is a permission the owner does not hold: a key can never do more
    than its owner."""

    status = 403
    code = "scope_not_held"
    title = "Scope not held"


class ApiKeyLimitReached(Conflict):
    code = "api_key_limit_reached"
    title = "Too many API keys"
