"""Recording audit events: one call, in the caller's unit of work.

``await record(db, "user.suspended", at=now, actor_id=admin_id, target=user_target(uid),
before={"status": "active"}, after={"status": "suspended"})`` adds one ``audit_event``
row to the session; it is committed or rolled back with the change it describes. The
request's IP, user agent and request id are filled in from the current request (see
:mod:`atrium.audit.context`). Values of fields whose name looks secret (password, hash,
token, secret, key, ...) are replaced by ``"[redacted]"`` wherever they appear in
``before``, ``after`` or ``details``.

Action names are ``<resource>.<event>``; see :data:`ACTIONS`. Features added later
(email verification, password reset, email change) call :func:`record` with their own
action names, e.g. ``"user.email_verified"``, ``"user.password_reset"``,
``"user.email_changed"`` (already listed in :data:`ACTIONS`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.context import current_request_meta
from atrium.models import AuditEvent

ACTIONS: Final[dict[str, str]] = {
    "user.registered": "An account was created through registration.",
    "auth.login_succeeded": "A login succeeded; a session was opened.",
    "auth.login_failed": "A login failed; details.reason says why.",
    "auth.login_throttled": "Failed logins reached the threshold: further attempts are delayed"
    " and the owner was emailed.",
    "auth.logout": "A session was ended by its user.",
    "auth.refresh_token_reused": "A used refresh token was presented; its session was revoked.",  # nosec B105
    "user.password_changed": "The owner changed the password.",
    "user.password_reset": "The password was reset through the email flow.",
    "user.email_verified": "The email address was verified.",
    "user.email_changed": "The email address was changed.",
    "user.updated": "The owner changed account fields.",
    "user.deleted_self": "The owner deleted the account.",
    "session.revoked": "A session was revoked (by its owner or an admin).",
    "admin.user_updated": "An admin changed an account.",
    "admin.user_suspended": "An admin suspended an account; its sessions were revoked.",
    "admin.user_activated": "An admin re-activated a suspended account.",
    "admin.user_deleted": "An admin soft-deleted an account; its sessions were revoked.",
    "admin.user_restored": "An admin restored a soft-deleted account.",
    "admin.sessions_revoked": "An admin revoked every session of an account.",
    "admin.user_purged": "A soft-deleted account was removed for good after retention.",
    "profile.updated": "The owner changed profile fields or privacy settings.",
    "profile.verified": "A moderator set the profile's verified badge.",
    "profile.unverified": "A moderator removed the profile's verified badge.",
    "profile.avatar_changed": "The owner uploaded a new avatar.",
    "profile.avatar_removed": "The owner removed the avatar.",
    "file.uploaded": "A file was uploaded.",
    "file.deleted": "A file was deleted (by its owner or with files:manage).",
    "file.malware_detected": "An upload was refused: the malware scanner found a signature.",
    "role.created": "A role was created.",
    "role.updated": "A role's description, permissions or parents changed.",
    "role.deleted": "A role was deleted.",
    "role.granted": "A role was given to an account.",
    "role.revoked": "A role was taken from an account.",
}

_SECRET_NAME = re.compile(r"pass|hash|token|secret|key|otp|credential|cookie", re.IGNORECASE)
REDACTED = "[redacted]"

ACTOR_USER, ACTOR_SYSTEM, ACTOR_ANONYMOUS = "user", "system", "anonymous"


def redact(value: Any) -> Any:
    """``value`` with every mapping entry whose key looks secret replaced by
    ``"[redacted]"`` (recursively through mappings and lists)."""
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED if _SECRET_NAME.search(str(k)) else redact(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The fields of ``after`` whose value differs from ``before``, as before/after."""
    changed = [k for k in after if before.get(k) != after[k]]
    return {
        "before": {k: before.get(k) for k in changed},
        "after": {k: after[k] for k in changed},
    }


def new_event(
    action: str,
    *,
    at: datetime,
    actor_id: uuid.UUID | None,
    actor_type: str | None = None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """An :class:`AuditEvent` for ``action`` (one of :data:`ACTIONS`), not yet added."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    meta = current_request_meta()
    changes = None
    if before is not None or after is not None:
        changes = {"before": redact(before or {}), "after": redact(after or {})}
    if actor_type is None:
        actor_type = ACTOR_USER if actor_id is not None else ACTOR_SYSTEM
    return AuditEvent(
        id=uuid.uuid4(),
        occurred_at=at,
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        ip_address=meta.ip_address,
        user_agent=meta.user_agent,
        request_id=meta.request_id,
        changes=changes,
        details=redact(details) if details else None,
    )


async def record(
    db: AsyncSession,
    action: str,
    *,
    at: datetime,
    actor_id: uuid.UUID | None,
    actor_type: str | None = None,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Add one audit event to ``db``'s unit of work (no flush: it is written with the
    change it describes, at the next flush or the commit).

    ``actor_type`` defaults to ``"user"`` when ``actor_id`` is given, else ``"system"``;
    use ``"anonymous"`` for unauthenticated callers (a failed login for an unknown email).

    Raises:
        ValueError: ``action`` is not in :data:`ACTIONS` (a programming error).
    """
    db.add(
        new_event(
            action,
            at=at,
            actor_id=actor_id,
            actor_type=actor_type,
            target_type=target_type,
            target_id=target_id,
            before=before,
            after=after,
            details=details,
        )
    )
