"""The files of an export and the meaning of every field: the writer's table and the
text of ``README.txt`` (GDPR art. 12: information in a concise, intelligible form)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class FileDoc:
    """One file of the archive: what it holds and each field's meaning (README.txt)."""

    name: str
    description: str
    fields: Mapping[str, str]


_TS = " (ISO 8601, UTC)"

FILES: tuple[FileDoc, ...] = (
    FileDoc(
        "account.json",
        "The account (one object).",
        {
            "id": "The account's identifier (UUID).",
            "email": "The email address used to sign in.",
            "email_verified_at": "When the address was verified, or null" + _TS,
            "full_name": "The name given to the account, or null.",
            "username": "The public username, or null.",
            "status": "active or suspended.",
            "profile_verified": "Whether the profile carries the verified badge.",
            "locale": "Language of the emails, or null for the default.",
            "roles": "Names of the roles the account holds.",
            "created_at": "When the account was created" + _TS,
            "updated_at": "When the account last changed" + _TS,
            "last_login_at": "The last sign-in, or null" + _TS,
            "deletion_due_at": "When a requested deletion erases the account, or null" + _TS,
        },
    ),
    FileDoc(
        "profile.json",
        "The public profile (one object, or null when none was saved).",
        {
            "display_name": "Name shown on the profile.",
            "bio": "Short text about the account.",
            "location": "Free-text location.",
            "website": "A URL.",
            "pronouns": "Pronouns shown on the profile.",
            "locale": "Preferred language (BCP 47).",
            "timezone": "IANA time zone name.",
            "visibility": "Who may see the profile: public, members or private.",
            "location_visibility": "Who may see the location.",
            "website_visibility": "Who may see the website.",
            "pronouns_visibility": "Who may see the pronouns.",
            "avatar_version": "Version of the current avatar (its images are under files/avatar/).",
            "updated_at": "When the profile last changed" + _TS,
        },
    ),
    FileDoc(
        "preferences.json",
        "The account's preferences as they apply now (saved values over the defaults).",
        {"*": "Each key is a preference (notification channels per category, ...)."},
    ),
    FileDoc(
        "sessions.json",
        "Every session (signed-in device) still on record, oldest first.",
        {
            "id": "The session's identifier.",
            "created_at": "When it was opened" + _TS,
            "last_used_at": "When it was last used" + _TS,
            "expires_at": "When it expires at the latest" + _TS,
            "revoked_at": "When it was ended, or null" + _TS,
            "revoked_reason": "Why it was ended (logout, password_changed, ...), or null.",
            "user_agent": "The browser or client that opened it.",
            "ip_address": "The address it was opened from.",
            "aal": "Authentication assurance level reached (1, or 2 with a second factor).",
            "amr": "Authentication methods used (RFC 8176: pwd, otp, hwk, ...).",
            "auth_time": "When the user last authenticated in it" + _TS,
        },
    ),
    FileDoc(
        "security-events.json",
        "The account's own audit events (sign-ins, password, session and role changes, "
        "administrators' actions on the account), newest first.",
        {
            "id": "The event's identifier.",
            "occurred_at": "When it happened" + _TS,
            "action": "What happened (docs/audit.md lists the actions).",
            "by_self": "Whether the account itself did it (false: an administrator or the system).",
            "ip_address": "The address it came from (own actions only).",
            "user_agent": "The client it came from (own actions only).",
            "details": "Context of the event (a reason, a role name, ...).",
        },
    ),
    FileDoc(
        "notifications.json",
        "The notices in the account's inbox, oldest first.",
        {
            "id": "The notice's identifier.",
            "category": "Its category (security, account, ...).",
            "title": "Its title.",
            "body": "Its text.",
            "link": "A link it points to, or null.",
            "created_at": "When it was sent" + _TS,
            "read_at": "When it was read, or null" + _TS,
        },
    ),
    FileDoc(
        "identities.json",
        "Accounts of other providers linked for sign-in (social login), oldest first.",
        {
            "id": "The link's identifier.",
            "provider": "The identity provider (its slug).",
            "issuer": "The provider's issuer URL.",
            "subject": "The account's identifier at the provider.",
            "email": "The email address the provider gave, or null.",
            "created_at": "When it was linked" + _TS,
            "last_login_at": "Its last sign-in, or null" + _TS,
        },
    ),
    FileDoc(
        "mfa.json",
        "Second factors, recovery codes, trusted devices and passkeys: metadata only, "
        "never a secret, code or key.",
        {
            "factors": "Each factor: id, type (totp), name, created_at, verified_at, last_used_at.",
            "recovery_codes": "How many were issued (total) and how many are unused.",
            "trusted_devices": "Each device that may skip the second factor: id, "
            "created_at, expires_at, last_used_at, user_agent, ip_address.",
            "passkeys": "Each passkey: id, name, aaguid (authenticator model), device_type, "
            "backed_up, transports, created_at, last_used_at.",
        },
    ),
    FileDoc(
        "api-keys.json",
        "The account's API keys (metadata only, never the keys), oldest first.",
        {
            "id": "The key's identifier.",
            "name": "Its name.",
            "prefix": "Its first characters, as shown in lists.",
            "scopes": "The permissions it carries.",
            "created_at": "When it was created" + _TS,
            "expires_at": "When it expires, or null" + _TS,
            "last_used_at": "When it was last used, or null" + _TS,
            "last_used_ip": "The address it was last used from, or null.",
            "revoked_at": "When it was revoked, or null" + _TS,
            "revoked_reason": "Why it was revoked, or null.",
        },
    ),
    FileDoc(
        "activity.json",
        "Daily activity of the account (a rollup per day, not a log of requests), oldest "
        "first; empty when activity tracking is off for the account.",
        {
            "day": "The day (UTC, YYYY-MM-DD).",
            "first_seen_at": "The first request of the day" + _TS,
            "last_seen_at": "The last request of the day" + _TS,
            "requests": "How many requests the account made that day.",
            "logins": "How many sign-ins.",
            "active_sessions": "How many sessions were used.",
            "ip_prefix": "The network it came from, truncated (IPv4 /24, IPv6 /48 by default).",
        },
    ),
    FileDoc(
        "files.json",
        "The account's uploaded files; their contents are under files/.",
        {
            "id": "The file's identifier.",
            "filename": "Its name when uploaded.",
            "content_type": "Its media type.",
            "size_bytes": "Its size in bytes.",
            "sha256": "Its SHA-256 digest (hex).",
            "created_at": "When it was uploaded" + _TS,
            "path": "Where its content is in this archive.",
        },
    ),
)

README_INTRO = """\
Export of your account's data
=============================

This archive holds the personal data the service keeps about your account, in
machine-readable JSON (UTF-8), as the right of access and the right to data portability
provide (GDPR articles 15 and 20). Dates are ISO 8601 in UTC. Secrets (password hash,
second-factor secrets, recovery codes, API keys, tokens) are never exported.

files/<id>_<name>      the content of each uploaded file (files.json describes them)
files/avatar/<n>.webp  the current avatar, n x n pixels

"""


def readme() -> str:
    """The text of README.txt: every file of the archive and every field."""
    lines = [README_INTRO]
    for doc in FILES:
        lines.append(f"{doc.name}\n{'-' * len(doc.name)}\n{doc.description}\n")
        for name, meaning in doc.fields.items():
            label = "(every key)" if name == "*" else name
            lines.append(f"  {label}: {meaning}")
        lines.append("")
    return "\n".join(lines) + "\n"
