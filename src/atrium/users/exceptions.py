"""Errors about accounts, raised wherever an account is looked up or written."""

from __future__ import annotations

from typing import Any

from atrium.errors import AppError, Conflict, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "User not found"


class EmailTaken(Conflict):
    code = "email_taken"
    title = "Email already registered"


class InvalidEmail(AppError):
    status = 422
    code = "invalid_email"
    title = "Invalid email address"


class WeakPassword(AppError):
    status = 422
    code = "weak_password"
    title = "Password does not meet the policy"

    def __init__(self, reasons: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(r["msg"] for r in reasons), errors=reasons)


class IncorrectPassword(AppError):
    """The current password given to confirm a sensitive change is wrong."""

    status = 403
    code = "incorrect_password"
    title = "Incorrect password"
