"""Request and response bodies of profiles and preferences, with their validation rules.

Every rule lives in a field validator, so a bad field is reported in the 422 problem's
``errors`` under its own ``loc`` (``["body", "website"]``), one entry per field.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from datetime import datetime
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from babel import Locale, UnknownLocaleError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool

from atrium.core.schemas import RequestModel
from atrium.mail.render import document_locale_tags


class Visibility(StrEnum):
    """Who may see a profile (or one of its fields): anyone, signed-in users, or only the
    owner and moderators."""

    public = "public"
    members = "members"
    private = "private"


USERNAME_RE: Final = re.compile(r"^[a-z0-9_.]{3,30}$")

# Handles that could pass for the service, its staff or its routes. Compared after
# lower-casing and with dots and underscores removed ("ad.min", "_root_" are refused too).
RESERVED_USERNAMES: Final[frozenset[str]] = frozenset(
    {
        "about", "abuse", "account", "accounts", "admin", "administrator", "api", "app",
        "atrium", "auth", "billing", "blog", "contact", "dashboard", "docs", "help",
        "home", "info", "login", "logout", "me", "mod", "moderator", "news", "noreply",
        "null", "official", "owner", "postmaster", "privacy", "profile", "profiles",
        "register", "root", "security", "settings", "signin", "signup", "staff", "static",
        "status", "support", "sysadmin", "system", "team", "terms", "test", "undefined",
        "user", "users", "webmaster", "www",
    }
)  # fmt: skip


def _username(value: str) -> str:
    value = value.strip().lower()
    if not USERNAME_RE.match(value):
        raise ValueError("3 to 30 characters of a-z, 0-9, '_' and '.'")
    if value.replace(".", "").replace("_", "") in RESERVED_USERNAMES:
        raise ValueError("this username is reserved")
    return value


# The control characters (Unicode category Cc) the text fields refuse, as a JSON Schema
# pattern, so that the OpenAPI document states the rule the validator applies.
_NO_CONTROL = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"
_NO_CONTROL_BUT_NEWLINE = "^[^\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f]*$"


def _string_branch(**extra: Any) -> Any:
    """``json_schema_extra`` adding ``extra`` to the string branch of an optional field."""

    def document(schema: dict[str, Any]) -> None:
        for branch in schema.get("anyOf", [schema]):
            if branch.get("type") == "string":
                branch.update(extra)

    return document


def _text(max_length: int, *, multiline: bool = False) -> Any:
    pattern = _NO_CONTROL_BUT_NEWLINE if multiline else _NO_CONTROL
    return (
        Field(json_schema_extra=_string_branch(pattern=pattern, maxLength=max_length)),
        _text_check(max_length, multiline=multiline),
    )


def _text_check(max_length: int, *, multiline: bool = False) -> Any:
    def check(value: str | None) -> str | None:
        if value is None:
            return None
        value = unicodedata.normalize("NFC", value).strip()
        if not value:
            return None
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} characters")
        allowed = {"\n"} if multiline else set()
        if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
            raise ValueError("control characters are not allowed")
        return value

    return AfterValidator(check)


def _website(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if len(value) > 2048 or any(c.isspace() or unicodedata.category(c) == "Cc" for c in value):
        raise ValueError("not a valid URL")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError("only http and https URLs are allowed")
    if not parts.hostname or parts.username or parts.password or (port is not None and port < 1):
        raise ValueError("the URL needs a host and no credentials")
    return value


def _locale(value: str | None) -> str | None:
    """A BCP 47 language tag Babel knows (CLDR), returned in BCP 47 form (``pt-BR``)."""
    if value is None:
        return None
    if not re.fullmatch(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*", value):
        raise ValueError("not a BCP 47 language tag")
    try:
        locale = Locale.parse(value, sep="-")
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError("unknown locale") from exc
    return "-".join(p for p in (locale.language, locale.script, locale.territory) if p)


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezone(value: str | None) -> str | None:
    if value is None:
        return None
    if value not in _timezones():
        raise ValueError("not an IANA time zone name (e.g. Europe/Paris)")
    return value


Username = Annotated[
    str,
    # Surrounding white space is dropped and letters are lower-cased before the check.
    Field(examples=["ada.lovelace"], pattern=r"^\s*[A-Za-z0-9_.]{3,30}\s*$"),
    AfterValidator(_username),
]
DisplayName = Annotated[str | None, *_text(100)]
Bio = Annotated[str | None, *_text(500, multiline=True)]
Location = Annotated[str | None, *_text(100)]
Pronouns = Annotated[str | None, *_text(40)]
# The OpenAPI document states a plain http(s) URL with a host and no credentials (the
# validator's rules; a blank value clears the field).
_WEBSITE_PATTERN = (
    r"^\s*$|^\s*[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?"
    r"(:[1-9][0-9]{0,3})?([/?#][!-~]*)?\s*$"
)
Website = Annotated[
    str | None,
    Field(
        examples=["https://example.org"],
        json_schema_extra=_string_branch(pattern=_WEBSITE_PATTERN, maxLength=2048),
    ),
    AfterValidator(_website),
]
LocaleTag = Annotated[
    str | None,
    Field(examples=["en-GB"], json_schema_extra=document_locale_tags),
    AfterValidator(_locale),
]
TimeZone = Annotated[
    str | None,
    Field(
        examples=["Europe/London"],
        json_schema_extra=lambda schema: _string_branch(enum=sorted(_timezones()))(schema),
    ),
    AfterValidator(_timezone),
]


class ProfileUpdate(RequestModel):
    """The fields to change; absent fields stay as they are, null clears a field."""

    username: Username | None = None
    display_name: DisplayName = None
    bio: Bio = None
    location: Location = None
    website: Website = None
    pronouns: Pronouns = None
    locale: LocaleTag = None
    timezone: TimeZone = None
    visibility: Visibility | None = None
    location_visibility: Visibility | None = None
    website_visibility: Visibility | None = None
    pronouns_visibility: Visibility | None = None


AVATAR_PATH = "/api/v1/avatars"


class OwnProfile(BaseModel):
    """The profile as its owner sees it: every field and the privacy settings."""

    username: str | None
    display_name: str | None
    bio: str | None
    location: str | None
    website: str | None
    pronouns: str | None
    locale: str | None
    timezone: str | None
    visibility: Visibility
    location_visibility: Visibility
    website_visibility: Visibility
    pronouns_visibility: Visibility
    verified: bool
    avatar: dict[str, str] | None = Field(
        description="Avatar URLs by edge length in pixels (`64`, `256`, `512`); null if none."
    )
    updated_at: datetime | None


class PublicProfile(BaseModel):
    """What the caller may see of someone's profile. Never carries the email address;
    ``location``, ``website`` and ``pronouns`` are null when hidden from the caller."""

    username: str
    display_name: str | None
    bio: str | None
    location: str | None
    website: str | None
    pronouns: str | None
    verified: bool
    avatar: dict[str, str] | None


class VerificationUpdate(RequestModel):
    verified: StrictBool


# --- preferences --------------------------------------------------------------------------

PREFERENCES_SCHEMA_VERSION: Final = 2
"""Bump when preferences are added; stored rows keep their version and are filled in with
the defaults of the new keys when read (no data migration)."""


class _Prefs(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Channels(_Prefs):
    """Where a category of notification is delivered."""

    email: StrictBool = True
    in_app: StrictBool = True


class Notifications(_Prefs):
    security: Channels = Channels()
    account: Channels = Channels()
    mentions: Channels = Channels(email=False)
    product_updates: Channels = Channels(email=False, in_app=False)


class Accessibility(_Prefs):
    reduced_motion: StrictBool = False
    high_contrast: bool = False
    font_scale: float = Field(default=1.0, ge=0.5, le=3.0)


class Privacy(_Prefs):
    """``activity_tracking`` false opts out of non-essential tracking: no daily activity
    rollup is recorded for the account (docs/analytics.md). Security records (sessions,
    the audit trail, the last login) are kept either way."""

    activity_tracking: StrictBool = True


class Preferences(_Prefs):
    """Every preference with its default. Unknown keys are refused (422)."""

    theme: Literal["light", "dark", "system"] = "system"
    language: LocaleTag = None
    date_format: Literal["locale", "YYYY-MM-DD", "DD/MM/YYYY", "MM/DD/YYYY"] = "locale"
    time_format: Literal["locale", "24h", "12h"] = "locale"
    notifications: Notifications = Notifications()
    accessibility: Accessibility = Accessibility()
    privacy: Privacy = Privacy()


class PreferencesRead(Preferences):
    schema_version: int = PREFERENCES_SCHEMA_VERSION
