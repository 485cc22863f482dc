"""Errors of data exports and account deletion."""

from __future__ import annotations

from atrium.errors import AppError


class ExportInProgress(AppError):
    """The account already has an export being made (one at a time)."""

    status = 409
    code = "export_in_progress"
    title = "An export of this account is already being made"


class ExportNotFound(AppError):
    status = 404
    code = "export_not_found"
    title = "No such export"


class ExportNotReady(AppError):
    status = 409
    code = "export_not_ready"
    title = "The export is not ready"


class ExportExpired(AppError):
    """The export's download lifetime (``privacy.export_ttl_hours``) is over."""

    status = 410
    code = "export_expired"
    title = "The export has expired"
