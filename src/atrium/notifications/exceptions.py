"""Errors of notifications."""

from __future__ import annotations

from atrium.errors import NotFound


class NotificationNotFound(NotFound):
    """No such notification, or another account's (the same answer)."""

    code = "notification_not_found"
    title = "Notification not found"
