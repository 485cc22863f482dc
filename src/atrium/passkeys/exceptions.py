"""Errors of the passkeys domain."""

from __future__ import annotations

from atrium.errors import AppError, Conflict, NotFound


class PasskeyNotFound(NotFound):
    code = "passkey_not_found"
    title = "No such passkey"


class PasskeyExists(Conflict):
    """The credential is already registered (to this or another account)."""

    code = "passkey_exists"
    title = "Passkey already registered"


class PasskeyLimitReached(Conflict):
    code = "passkey_limit_reached"
    title = "Too many passkeys"


class InvalidChallenge(AppError):
    """No live challenge matches: unknown, expired or already used (challenges are single
    use). Ask for new options."""

    status = 400
    code = "invalid_challenge"
    title = "Invalid or expired challenge"
    # A challenge claimed by a failed ceremony stays spent (single use).
    preserve_changes = True


class InvalidPasskey(AppError):
    """The credential does not pass the WebAuthn checks (origin, relying party, signature,
    signature counter) or is not registered. The same answer whatever the reason."""

    status = 401
    code = "invalid_passkey"
    title = "The passkey could not be verified"
    # The spent challenge and the failed-login audit event outlive the error.
    preserve_changes = True


class PasskeyRegistrationFailed(AppError):
    """The new credential does not pass the WebAuthn registration checks."""

    status = 400
    code = "passkey_registration_failed"
    title = "The passkey could not be registered"
    # The spent challenge stays spent.
    preserve_changes = True


class NoPasskey(Conflict):
    """A passkey was asked as the second factor of an account that has none."""

    code = "no_passkey"
    title = "The account has no passkey"
