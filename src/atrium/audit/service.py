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
from atrium.audit.repository import AuditFilter, AuditRepository
from atrium.audit.schemas import AuditEventRead, SecurityEventRead
from atrium.core.pagination import CursorCodec, CursorField, Page
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
    "user.export_requested": "An export of the account's data was requested (by its owner or"
    " an admin with users:export; details.export_id).",
    "user.export_downloaded": "An export of the account's data was downloaded.",
    "user.deletion_requested": "The owner asked for the account's deletion; details.due_at is"
    " when it is erased.",
    "user.deletion_cancelled": "The owner cancelled the deletion of the account.",
    "user.erased": "The account was erased for good (grace period over, or purge of a"
    " soft-deleted account); its audit events now name a pseudonym.",
    "session.revoked": "A session was revoked (by its owner or an admin).",
    "admin.user_updated": "An admin changed an account.",
    "admin.user_suspended": "An admin suspended an account; its sessions were revoked.",
    "admin.user_activated": "An admin re-activated a suspended account.",
    "admin.user_deleted": "An admin soft-deleted an account; its sessions were revoked.",
    "admin.user_restored": "An admin restored a soft-deleted account.",
    "admin.sessions_revoked": "An admin revoked every session of an account.",
    "admin.user_purged": "A soft-deleted account was removed for good after retention.",
    "admin.users_imported": "Accounts were imported from a file (details: format and counts).",
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
    "auth.step_up": "The user authenticated again in a live session (step-up); details.method"
    " says with what.",
    "auth.mfa_failed": "A wrong second factor was given at login or step-up; details.method.",
    "mfa.factor_added": "A second factor was verified and added to the account.",
    "mfa.factor_removed": "A second factor was removed; details.mfa_disabled when it was the"
    " last one.",
    "mfa.recovery_codes_generated": "A new set of recovery codes replaced the previous one.",
    "mfa.recovery_code_used": "A recovery code was used; details.remaining codes are left.",
    "mfa.trusted_device_added": "A device was trusted to skip the second factor.",
    "mfa.trusted_device_removed": "A trusted device was revoked.",
    "admin.mfa_reset": "An admin removed every second factor of an account.",
    "notification.broadcast": "An administrator sent a notice to every account or a role.",
    "api_key.created": "The owner created an API key (details: id, name, prefix, scopes).",
    "api_key.revoked": "The owner revoked one of their API keys.",
    "admin.api_key_revoked": "An admin revoked an account's API key.",
    "passkey.added": "The owner registered a passkey (details: id, name, aaguid).",
    "passkey.renamed": "The owner renamed a passkey.",
    "passkey.removed": "The owner deleted a passkey.",
    "social.identity_linked": "An external identity was linked to an account (details.how).",
    "social.identity_unlinked": "The owner removed a linked external identity.",
    "identity_provider.created": "An identity provider was added through the admin API.",
    "identity_provider.updated": "An identity provider's configuration was changed.",
    "identity_provider.deleted": "An identity provider was removed.",
    "webhook.created": "A webhook endpoint was added (details: url, event types).",
    "webhook.updated": "A webhook endpoint's URL, event types, description or state changed.",
    "webhook.deleted": "A webhook endpoint was removed with its delivery log.",
    "webhook.secret_rotated": "A webhook endpoint's signing secret was replaced (details: "
    "until when the previous one still signs).",
    "webhook.disabled": "A webhook endpoint was disabled after consecutive failed deliveries.",
    "webhook.delivery_retried": "An administrator queued a webhook delivery again.",
    "webhook.tested": "An administrator sent a test message to a webhook endpoint.",
}


def register_actions(actions: Mapping[str, str]) -> None:
    """Add an application's audit actions (name -> description) to :data:`ACTIONS`.
    Idempotent for the same descriptions.

    Raises:
        ValueError: a name is already registered with another description.
    """
    for name, description in actions.items():
        known = ACTIONS.get(name)
        if known is not None and known != description:
            raise ValueError(f"audit action {name!r} is already registered")
    ACTIONS.update(actions)


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


# --- reading the trail --------------------------------------------------------------------

# Newest first by (occurred_at, id); the field names are those of cursors already issued.
AUDIT_CURSOR = CursorCodec("audit", t=CursorField.DATETIME, id=CursorField.UUID)
_CURSOR = AUDIT_CURSOR


def _position(event: AuditEvent) -> dict[str, Any]:
    return {"t": event.occurred_at, "id": event.id}


async def _events(
    db: AsyncSession, filters: AuditFilter, limit: int, cursor: str | None
) -> list[AuditEvent]:
    after = None
    if cursor is not None:
        position = _CURSOR.decode(cursor)
        after = (position["t"], position["id"])
    return await AuditRepository(db).list_events(filters, limit=limit, after=after)


async def list_events(
    db: AsyncSession, filters: AuditFilter, *, limit: int, cursor: str | None
) -> Page[AuditEventRead]:
    """One page of the audit trail, newest first (keyset on ``(occurred_at, id)``).

    Raises:
        InvalidCursor: 400, ``cursor`` was not issued by this list.
    """
    rows = await _events(db, filters, limit, cursor)
    return _CURSOR.page(rows, limit, _position, AuditEventRead.model_validate)


async def list_security_events(
    db: AsyncSession, user_id: uuid.UUID, *, limit: int, cursor: str | None
) -> Page[SecurityEventRead]:
    """One page of the events whose target is ``user_id``'s account, newest first. The IP
    address and user agent are shown only for the events the account caused itself.

    Raises:
        InvalidCursor: 400, ``cursor`` was not issued by this list.
    """
    filters = AuditFilter(target_type="user", target_id=str(user_id))
    rows = await _events(db, filters, limit, cursor)

    def item(r: AuditEvent) -> SecurityEventRead:
        by_self = r.actor_id == user_id
        return SecurityEventRead(
            id=r.id,
            occurred_at=r.occurred_at,
            action=r.action,
            by_self=by_self,
            ip_address=r.ip_address if by_self else None,
            user_agent=r.user_agent if by_self else None,
            details=r.details,
        )

    return _CURSOR.page(rows, limit, _position, item)
