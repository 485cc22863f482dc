"""Errors of the authentication domain."""

from __future__ import annotations

from atrium.errors import AppError, NotFound
from atrium.users.exceptions import EmailTaken as EmailTaken
from atrium.users.exceptions import IncorrectPassword as IncorrectPassword
from atrium.users.exceptions import InvalidEmail as InvalidEmail
from atrium.users.exceptions import WeakPassword as WeakPassword


class InvalidCredentials(AppError):
    status = 401
    code = "invalid_credentials"
    title = "Invalid email or password"
    # Nothing but the failed-login audit event is pending when this is raised, and that
    # event must outlive the error.
    preserve_changes = True


class AccountSuspended(AppError):
    """The password was right, but the account is suspended (a wrong password on a
    suspended account stays ``invalid_credentials``: nothing is learnt without it)."""

    status = 403
    code = "account_suspended"
    title = "The account is suspended"
    # The failed-login audit event must outlive the error, as with InvalidCredentials.
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


class MfaRequired(AppError):
    """The password is right and the account has MFA: continue with ``POST
    /auth/mfa/verify`` and the ``mfa_token`` (problem members ``mfa_token``,
    ``expires_in``, ``factors``). Commits: the challenge must outlive the answer."""

    status = 401
    code = "mfa_required"
    title = "A second factor is required"
    preserve_changes = True

    def __init__(self, mfa_token: str, expires_in: int, factors: list[dict[str, str]]) -> None:
        super().__init__(
            "Give a code of your authenticator app or a recovery code (POST /auth/mfa/verify).",
            headers={"Cache-Control": "no-store"},
            extensions={"mfa_token": mfa_token, "expires_in": expires_in, "factors": factors},
        )


class MfaEnrollmentRequired(AppError):
    """A role of the account requires MFA and its grace period is over: only ``/users/me``,
    the MFA enrolment routes, step-up and logout answer until a factor is added."""

    status = 403
    code = "mfa_enrollment_required"
    title = "Set up a second factor first"


class ApiKeyNotAllowed(AppError):
    """The route needs a signed-in session: an API key never reaches sensitive operations
    (password, email, sessions, account deletion) nor the management of keys."""

    status = 403
    code = "api_key_not_allowed"
    title = "Not allowed with an API key"
