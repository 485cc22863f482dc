"""Which domain events become a notice to their account, in which category, with which text.

A notice's ``title`` and ``body`` are ``str.format`` templates over the event's ``data``
(English, the source language). ``email`` names the outbox template that carries the notice
by email (``notification``: the generic one, title and body in a branded frame), or None
for in-app only. Category ``security`` always reaches email, whatever the preferences
(OWASP ASVS 5.0 V6.3.7: users are notified of changes to their authentication
details); other categories follow the account's preferences per channel.

Emails whose link carries a token (verification, reset, email-change confirmation) never
come from here: events never carry tokens; those flows queue their email themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from atrium.events.dispatcher import EventEnvelope

SECURITY = "security"
ACCOUNT_PAGE = "/account"


@dataclass(frozen=True)
class Notice:
    category: str
    title: str
    body: str
    link: str | None = ACCOUNT_PAGE
    email: str | None = None


_PASSWORD = Notice(
    SECURITY,
    "Your password was changed",
    "If this was not you, reset your password now and review your active sessions.",
    email="password_changed",
)

NOTICES: Final[dict[str, Notice]] = {
    "password.changed": _PASSWORD,
    "password.reset": _PASSWORD,
    "user.email_changed": Notice(
        SECURITY,
        "Your email address was changed",
        "Your account's email address is now {email}. If this was not you, contact support.",
        email="notification",
    ),
    "user.suspended": Notice(
        SECURITY,
        "Your account was suspended",
        "An administrator suspended your account; you cannot sign in until it is re-activated.",
        link=None,
        email="notification",
    ),
    "user.reactivated": Notice(
        SECURITY,
        "Your account was re-activated",
        "You can sign in again.",
        email="notification",
    ),
    "mfa.factor_added": Notice(
        SECURITY,
        "A second factor was added",
        "A {kind} factor now protects your account. If this was not you, contact support.",
        email="notification",
    ),
    "mfa.factor_removed": Notice(
        SECURITY,
        "A second factor was removed",
        "A {kind} factor no longer protects your account. If this was not you, act now.",
        email="notification",
    ),
    # The API-key flow emails its own notice (template api_key_created, with the key's
    # prefix and scopes): in-app only here, so the owner gets one email.
    "api_key.created": Notice(
        SECURITY,
        "An API key was created",
        "The API key “{name}” can now act for your account.",
    ),
    "api_key.revoked": Notice(
        SECURITY,
        "An API key was revoked",
        "The API key “{name}” no longer works.",
        email="notification",
    ),
    # Security: a copy of every personal datum of the account is ready, so the email goes
    # whatever the preferences (the owner learns of an export an administrator asked for).
    "export.ready": Notice(
        SECURITY,
        "Your data export is ready",
        "Download it before {expires_at} (UTC); after that it is deleted.",
        link="/api/v1/users/me/exports/{export_id}/download",
        email="notification",
    ),
    "user.email_verified": Notice("account", "Your email address is verified", "Thank you."),
    "role.granted": Notice(
        "account", "You were given a role", "Your account now holds the role “{role}”."
    ),
    "role.revoked": Notice(
        "account", "A role was removed", "Your account no longer holds the role “{role}”."
    ),
}


def recipient(event: EventEnvelope) -> str | None:
    """The id of the account a notice of ``event`` is for: the subject when it is an
    account, else ``data.user_id``."""
    if event.subject_type == "user":
        return event.subject_id
    user_id = event.data.get("user_id")
    return str(user_id) if user_id else None


def render(notice: Notice, event: EventEnvelope) -> tuple[str, str]:
    """The notice's title and body for ``event`` (``data`` fields filled in)."""
    return notice.title.format(**event.data), notice.body.format(**event.data)


def render_link(notice: Notice, event: EventEnvelope) -> str | None:
    """The notice's link (a path) for ``event``, ``data`` fields filled in (such as an
    export's id), or None."""
    return notice.link.format(**event.data) if notice.link else None


def register_notices(notices: Mapping[str, Notice]) -> None:
    """Add an application's notices (event type -> notice) to :data:`NOTICES`, before the
    consumers are built (start-up). Idempotent for an identical entry.

    Raises:
        ValueError: a type already has another notice.
    """
    for name, notice in notices.items():
        known = NOTICES.get(name)
        if known is not None and known != notice:
            raise ValueError(f"event type {name!r} already has a notice")
    NOTICES.update(notices)
