"""Why a password login fails, in the audit trail's words (never shown to the client,
which gets one answer for every failure: OWASP Authentication Cheat Sheet)."""

from __future__ import annotations

from atrium.models import User, UserStatus


def login_failure(user: User | None, password_ok: bool) -> str | None:
    """Why a login fails (for the audit trail only), or None when it succeeds."""
    if user is None:
        return "unknown_email"
    if not password_ok:
        return "wrong_password"
    if user.deleted_at is not None:
        # The owner's own deletion, still in its grace period: sign-in offers only to
        # cancel it (DeletionPending).
        return "deletion_pending" if user.deletion_due_at is not None else "account_deleted"
    if user.status != UserStatus.active.value:
        return "account_suspended"
    return None
