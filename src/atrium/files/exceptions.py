"""Errors of user files."""

from __future__ import annotations

from atrium.errors import AppError, NotFound, ServiceUnavailable


class FileNotFound(NotFound):
    """No such file, or another user's file (the same answer: no enumeration of ids)."""

    code = "file_not_found"
    title = "File not found"


class FileTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class FileTypeNotAllowed(AppError):
    status = 415
    code = "file_type_not_allowed"
    title = "File type not allowed"


class EmptyFile(AppError):
    status = 422
    code = "empty_file"
    title = "The file is empty"


class MalwareDetected(AppError):
    """The scanner found a signature. The audit event of the refusal is kept."""

    status = 422
    code = "malware_detected"
    title = "The file was refused by the malware scanner"
    preserve_changes = True


class ScannerUnavailable(ServiceUnavailable):
    code = "scanner_unavailable"
    title = "The malware scanner is not reachable"
