"""Errors of account administration."""

from __future__ import annotations

from atrium.errors import AppError, Conflict
from atrium.users.exceptions import UserNotFound as UserNotFound


class UserNotDeleted(Conflict):
    code = "user_not_deleted"
    title = "The account is not deleted"


class UserDeleted(Conflict):
    code = "user_deleted"
    title = "The account is deleted; restore it first"


class RetentionExpired(Conflict):
    code = "retention_expired"
    title = "The account is past its retention window and can no longer be restored"


class BulkActionFailed(AppError):
    """At least one id of a bulk action failed; nothing was changed. ``errors`` holds the
    per-id result (``{"id", "ok", "code"?, "detail"?}``)."""

    status = 409
    code = "bulk_action_failed"
    title = "Bulk action failed; nothing was changed"
