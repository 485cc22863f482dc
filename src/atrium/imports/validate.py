"""Validating one imported record: Atrium's rules for every field, errors by field.

The profile fields follow the same rules as ``PATCH /api/v1/users/me/profile`` (the
annotated types of :mod:`atrium.profiles.schemas`); the email is normalised like
registration's (:func:`atrium.users.email.normalize_email`); the password hash must be of a
scheme Atrium verifies (:func:`atrium.core.legacy_hashes.normalize_hash`).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, ValidationError

from atrium.core.legacy_hashes import UnsupportedHash, normalize_hash
from atrium.imports.formats import RawRecord
from atrium.profiles.schemas import (
    Bio,
    DisplayName,
    LocaleTag,
    Location,
    Pronouns,
    TimeZone,
    Username,
    Website,
)
from atrium.users.email import NormalizedEmail, normalize_email
from atrium.users.exceptions import InvalidEmail

_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f"}


def _flag(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return value


def _roles(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(";", " ").split()
    return value


def _timestamp(value: Any) -> Any:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
        if parsed.tzinfo is None:
            raise ValueError(
                "a timestamp needs its UTC offset (ISO 8601, e.g. 2024-05-01T10:00:00Z)"
            )
        return parsed.astimezone(UTC)
    return value


class ImportRow(BaseModel):
    """The fields of one imported account (absent = left as stored, or the default for a
    new account)."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=320)
    password_hash: str | None = Field(default=None, max_length=255)
    full_name: str | None = Field(default=None, max_length=200)
    username: Username | None = None
    email_verified: Annotated[StrictBool | None, BeforeValidator(_flag)] = None
    status: Literal["active", "suspended"] | None = None
    locale: LocaleTag = None
    created_at: Annotated[datetime | None, BeforeValidator(_timestamp)] = None
    roles: Annotated[list[Annotated[str, Field(max_length=64)]], BeforeValidator(_roles)] = Field(
        default_factory=list, max_length=50
    )
    display_name: DisplayName = None
    bio: Bio = None
    location: Location = None
    website: Website = None
    pronouns: Pronouns = None
    timezone: TimeZone = None


PROFILE_FIELDS = ("display_name", "bio", "location", "website", "pronouns", "timezone")


class StageRow(NamedTuple):
    """A valid record, as written to the staging table (its columns in order, then the
    roles)."""

    record: int
    line: int | None
    id: uuid.UUID
    email: str
    email_key: str
    password_hash: str | None
    full_name: str | None
    username: str | None
    email_verified: bool | None
    status: str | None
    locale: str | None
    created_at: datetime | None
    has_profile: bool
    display_name: str | None
    bio: str | None
    location: str | None
    website: str | None
    pronouns: str | None
    timezone: str | None
    roles: tuple[str, ...]


ValidationIssue = tuple[str | None, str]

# An ASCII dot-atom local part (RFC 5322 §3.2.3) and a domain: what nearly every address
# of an import looks like. email-validator leaves such a local part as it is and only
# normalises the domain, so the domain's answer is cached and the local part checked here;
# anything else goes through email-validator whole.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_SIMPLE_EMAIL = re.compile(rf"^({_ATOM}(?:\.{_ATOM})*)@([A-Za-z0-9.-]+)$")


@lru_cache(maxsize=4096)
def _domain(domain: str) -> str | None:
    """The normalised form of ``domain``, or None if email-validator refuses it."""
    try:
        return normalize_email(f"a@{domain}").address[2:]
    except InvalidEmail:
        return None


def fast_normalize_email(raw: str) -> NormalizedEmail:
    """:func:`atrium.users.email.normalize_email`, answered without email-validator for a
    plain ASCII address whose domain was seen before (same result, tests check it).

    Raises:
        InvalidEmail: as ``normalize_email``.
    """
    m = _SIMPLE_EMAIL.match(raw)
    if m is None or len(m.group(1)) > 64 or len(raw) > 254:
        return normalize_email(raw)
    domain = _domain(m.group(2))
    if domain is None:
        return normalize_email(raw)
    address = f"{m.group(1)}@{domain}"
    return NormalizedEmail(address=address, key=address.casefold())


def validate(raw: RawRecord, known_roles: frozenset[str]) -> StageRow | list[ValidationIssue]:
    """The staging row of ``raw``, or every problem found in it as ``(field, message)``."""
    issues: list[ValidationIssue] = list(raw.errors)
    if issues and not raw.fields:
        return issues
    try:
        row = ImportRow.model_validate(raw.fields)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            loc = error["loc"]
            issues.append((str(loc[0]) if loc else None, error["msg"]))
        return issues
    try:
        email = fast_normalize_email(row.email)
    except InvalidEmail as exc:
        issues.append(("email", str(exc)))
        email = None
    password_hash = None
    if row.password_hash is not None:
        try:
            password_hash = normalize_hash(row.password_hash)
        except UnsupportedHash as exc:
            issues.append(("password_hash", str(exc)))
    unknown = sorted({r for r in row.roles if r not in known_roles})
    if unknown:
        issues.append(("roles", f"unknown roles: {', '.join(unknown)[:200]}"))
    if issues or email is None:
        return issues
    profile = {name: getattr(row, name) for name in PROFILE_FIELDS}
    return StageRow(
        record=raw.record,
        line=raw.line,
        id=uuid.uuid4(),
        email=email.address,
        email_key=email.key,
        password_hash=password_hash,
        full_name=row.full_name.strip() or None if row.full_name else None,
        username=row.username,
        email_verified=row.email_verified,
        status=row.status,
        locale=row.locale,
        created_at=row.created_at,
        has_profile=any(v is not None for v in profile.values()),
        roles=tuple(dict.fromkeys(row.roles)),
        **profile,
    )
