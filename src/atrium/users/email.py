"""Email address validation and normalisation."""

from __future__ import annotations

from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from atrium.users.exceptions import InvalidEmail


@dataclass(frozen=True)
class NormalizedEmail:
    """``address``: as the user wrote it, normalised by email-validator (NFC, IDNA domain).
    ``key``: the case-folded form that carries the unique index."""

    address: str
    key: str


def normalize_email(raw: str) -> NormalizedEmail:
    """Validate the syntax of ``raw`` (no DNS lookups) and normalise it.

    Raises:
        InvalidEmail: not a syntactically valid address (RFC 5321/5322 as checked by
            email-validator).
    """
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc)) from exc
    return NormalizedEmail(address=result.normalized, key=result.normalized.casefold())
