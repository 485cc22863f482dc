"""Errors of activity and analytics."""

from __future__ import annotations

from atrium.errors import AppError


class InvalidRange(AppError):
    """A date range that is reversed, or longer than the route allows."""

    status = 422
    code = "invalid_range"
    title = "Invalid date range"
