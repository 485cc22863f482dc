"""The event catalogue: every event type, its schema version and its JSON Schema.

One place. ``docs/events.md`` lists the same types (tests/events/test_catalogue.py checks
both ways). A type is ``<resource>.<change>``; ``subject`` names what the event is about
(the ``subject_type`` of every event of that type). ``data`` schemas are JSON Schema draft
2020-12 objects with ``additionalProperties: false``, so an event cannot carry a field the
catalogue does not declare — and no declared field is a secret, hash or token (OWASP
Logging Cheat Sheet, "data to exclude"; tests walk every type).

Modules and applications added later declare their own types with
:func:`register_event_types`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from jsonschema import Draft202012Validator


@dataclass(frozen=True)
class EventType:
    """One catalogue entry: ``data`` is validated against ``schema`` on every emit."""

    name: str
    subject: str
    description: str
    properties: Mapping[str, Any]
    required: tuple[str, ...] = ()
    version: int = 1
    category: str = "account"  # the notification category its notices fall under
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        Draft202012Validator.check_schema(self.schema)
        object.__setattr__(self, "validator", Draft202012Validator(self.schema))

    @property
    def schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of ``data``."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:atrium:event:{self.name}:v{self.version}",
            "title": self.name,
            "description": self.description,
            "type": "object",
            "properties": dict(self.properties),
            "required": list(self.required),
            "additionalProperties": False,
        }


UUID: Final = {"type": "string", "format": "uuid"}
EMAIL: Final = {"type": "string", "format": "email", "maxLength": 320}
TEXT: Final = {"type": "string", "maxLength": 512}
FIELDS: Final = {"type": "array", "items": {"type": "string", "maxLength": 64}}
SESSION_REASONS: Final = {"type": "string", "maxLength": 64}


def _t(
    name: str,
    subject: str,
    description: str,
    /,
    *,
    in_category: str = "account",
    required: Iterable[str] | None = None,
    **properties: Any,
) -> EventType:
    return EventType(
        name=name,
        subject=subject,
        description=description,
        properties=properties,
        required=tuple(properties if required is None else required),
        category=in_category,
    )


_BUILTIN = [
    _t(
        "user.created",
        "user",
        "An account was created (registration, an administrator, the first admin).",
        email=EMAIL,
        via={"enum": ["registration", "admin", "bootstrap"]},
    ),
    _t(
        "user.updated",
        "user",
        "Account fields changed (names only, never values).",
        fields=FIELDS,
    ),
    _t("user.email_verified", "user", "The email address was verified.", email=EMAIL),
    _t(
        "user.email_changed",
        "user",
        "The email address was changed; the notice goes to the previous address too.",
        in_category="security",
        email=EMAIL,
        previous_email=EMAIL,
    ),
    _t("user.suspended", "user", "An administrator suspended the account.", in_category="security"),
    _t("user.reactivated", "user", "A suspended account was re-activated.", in_category="security"),
    _t(
        "user.deleted",
        "user",
        "The account was deleted: soft-deleted by an administrator (it can be restored until"
        " it is purged), or erased for good (erased: true) when its owner's grace period"
        " ended or a soft-deleted account was purged.",
        required=["by_self"],
        by_self={"type": "boolean"},
        erased={"type": "boolean"},
    ),
    _t(
        "user.deletion_scheduled",
        "user",
        "The owner asked for the account's deletion: it is erased at due_at unless they"
        " cancel; its sessions and API keys were revoked.",
        in_category="security",
        due_at={"type": "string", "format": "date-time"},
    ),
    _t(
        "user.deletion_cancelled",
        "user",
        "The owner cancelled the deletion of the account during its grace period.",
        in_category="security",
    ),
    _t(
        "export.ready",
        "user",
        "An export of the account's data is ready to download until expires_at.",
        in_category="security",
        export_id=UUID,
        expires_at={"type": "string", "format": "date-time"},
    ),
    _t("user.restored", "user", "A soft-deleted account was restored."),
    _t(
        "session.created",
        "session",
        "A sign-in opened a session.",
        in_category="security",
        required=["user_id"],
        user_id=UUID,
        ip_address={"type": ["string", "null"], "maxLength": 64},
        user_agent={"type": ["string", "null"], "maxLength": 512},
    ),
    _t(
        "session.revoked",
        "session",
        "A session was ended (sign-out, revocation, password change, suspension).",
        in_category="security",
        user_id=UUID,
        reason=SESSION_REASONS,
    ),
    _t(
        "password.changed",
        "user",
        "The owner changed the password; other sessions were revoked.",
        in_category="security",
    ),
    _t(
        "password.reset",
        "user",
        "The password was reset through the emailed link; every session was revoked.",
        in_category="security",
    ),
    _t(
        "mfa.factor_added",
        "user",
        "A second factor was enrolled.",
        in_category="security",
        factor_id=UUID,
        kind={"type": "string", "maxLength": 32},
    ),
    _t(
        "mfa.factor_removed",
        "user",
        "A second factor was removed.",
        in_category="security",
        factor_id=UUID,
        kind={"type": "string", "maxLength": 32},
    ),
    _t(
        "role.granted",
        "user",
        "A role was given to the account.",
        role={"type": "string", "maxLength": 64},
    ),
    _t(
        "role.revoked",
        "user",
        "A role was taken from the account.",
        role={"type": "string", "maxLength": 64},
    ),
    _t(
        "role.updated",
        "role",
        "A role's description, permissions or parents changed.",
        role={"type": "string", "maxLength": 64},
        fields=FIELDS,
    ),
    _t(
        "api_key.created",
        "user",
        "An API key was created for the account.",
        in_category="security",
        api_key_id=UUID,
        name=TEXT,
    ),
    _t(
        "api_key.revoked",
        "user",
        "An API key of the account was revoked.",
        in_category="security",
        api_key_id=UUID,
        name=TEXT,
    ),
    _t(
        "file.uploaded",
        "file",
        "A file was stored.",
        owner_id=UUID,
        content_type={"type": "string", "maxLength": 255},
        size_bytes={"type": "integer", "minimum": 0},
    ),
    _t("file.deleted", "file", "A file was deleted.", owner_id=UUID),
    _t(
        "notification.broadcast",
        "broadcast",
        "An administrator sent a notice to every account or to a role's holders; the"
        " worker writes it to each inbox in batches.",
        required=["audience", "category"],
        audience={"enum": ["all", "role"]},
        role={"type": ["string", "null"], "maxLength": 64},
        category={"type": "string", "maxLength": 32},
    ),
]

CATALOGUE: Final[dict[str, EventType]] = {t.name: t for t in _BUILTIN}


def register_event_types(types: Iterable[EventType]) -> None:
    """Add the event types of a later module or an application to :data:`CATALOGUE`.
    Idempotent for an identical entry.

    Raises:
        ValueError: a name is already registered with another definition.
    """
    types = list(types)
    for event_type in types:
        known = CATALOGUE.get(event_type.name)
        if known is not None and known != event_type:
            raise ValueError(f"event type {event_type.name!r} is already registered")
    CATALOGUE.update({t.name: t for t in types})


def event_type(name: str) -> EventType:
    """The catalogue entry of ``name``.

    Raises:
        KeyError: ``name`` is not in the catalogue (a programming error).
    """
    return CATALOGUE[name]
