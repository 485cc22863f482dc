"""Errors of user imports."""

from __future__ import annotations

from atrium.errors import AppError


class ImportNotFound(AppError):
    status = 404
    code = "import_not_found"
    title = "No such import"


class EmptyImport(AppError):
    status = 422
    code = "empty_import"
    title = "The import file is empty"
