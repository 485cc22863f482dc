"""Errors of the MFA domain (problem+json codes)."""

from __future__ import annotations

from atrium.errors import AppError, Conflict, NotFound


class InvalidOtp(AppError):
    """A wrong, expired or already used code (TOTP or recovery code). Counted by the
    per-account login throttle; the failure's audit event outlives the error."""

    status = 401
    code = "invalid_otp"
    title = "Invalid code"
    preserve_changes = True


class InvalidEnrolmentCode(AppError):
    """The code given to verify a new factor is wrong or expired (check the clock)."""

    status = 422
    code = "invalid_otp"
    title = "Invalid code"


class InvalidMfaToken(AppError):
    """The ``mfa_token`` is unknown, used, expired or was issued to another client."""

    status = 401
    code = "invalid_mfa_token"
    title = "Invalid or expired MFA token"


class StepUpFailed(AppError):
    """The password or second factor given to step up is wrong (the failure is kept)."""

    status = 401
    code = "invalid_credentials"
    title = "Invalid credentials"
    preserve_changes = True


class UnsupportedMethod(AppError):
    """The account has no factor of the kind given (e.g. a code without MFA)."""

    status = 400
    code = "unsupported_method"
    title = "This account has no factor of that kind"


class FactorNotFound(NotFound):
    code = "factor_not_found"
    title = "Factor not found"


class FactorAlreadyVerified(Conflict):
    code = "factor_already_verified"
    title = "The factor is already verified"


class TooManyFactors(Conflict):
    code = "too_many_factors"
    title = "Too many factors"


class MfaNotEnabled(Conflict):
    code = "mfa_not_enabled"
    title = "The account has no second factor"


class TrustedDeviceNotFound(NotFound):
    code = "trusted_device_not_found"
    title = "Trusted device not found"
