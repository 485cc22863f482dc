"""Errors of the authentication domain."""

from __future__ import annotations

from typing import Any

from atrium.errors import AppError, Conflict, NotFound


class EmailTaken(Conflict):
    code = "email_taken"
    title = "Email already registered"


class InvalidEmail(AppError):
    status = 422
    code = "invalid_email"
    title = "Invalid email address"


class WeakPassword(AppError):
    status = 422
    code = "weak_password"
    title = "Password does not meet the policy"

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(r["msg"] for r in reasons), errors=reasons)


class InvalidCredentials(AppError):
    status = 401
    code = "invalid_credentials"
    title = "Invalid email or password"
    # Nothing but the failed-login audit event is pending when this is raised, and that
    # event must outlive the error.
    preserve_changes = True


class InvalidRefreshToken(AppError):
    status = 401
    code = "invalid_refresh_token"
    title = "Invalid refresh token"


class RefreshTokenReused(AppError):
    status = 401
    code = "refresh_token_reused"
    title = "Refresh token reused"
    preserve_changes = True  # the session's revocation must outlive the error


class IncorrectPassword(AppError):
    """The current password given to confirm a sensitive change is wrong."""

    status = 403
    code = "incorrect_password"
    title = "Incorrect password"


class SessionNotFound(NotFound):
    code = "session_not_found"
    title = "Session not found"


class LoginThrottled(AppError):
    """Too many failed logins for this account or address: wait ``Retry-After`` seconds."""

    status = 429
    code = "login_throttled"
    title = "Too many failed logins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "Too many failed login attempts; try again later.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after
