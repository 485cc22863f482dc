"""Errors of the account email flows."""

from __future__ import annotations

from atrium.errors import AppError


class InvalidEmailToken(AppError):
    """An emailed token is unknown, used, expired, of another kind, or malformed."""

    status = 400
    code = "invalid_token"
    title = "Invalid or expired token"


class EmailNotVerified(AppError):
    status = 403
    code = "email_not_verified"
    title = "Email address not verified"


class EmailUnchanged(AppError):
    status = 422
    code = "email_unchanged"
    title = "This is already the account's email address"
