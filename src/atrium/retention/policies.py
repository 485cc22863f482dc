"""What Atrium keeps, and for how long: one :class:`Policy` per kind of record.

Storage limitation (GDPR art. 5(1)(e)): personal data is kept "no longer than is necessary
for the purposes for which it is processed". Each policy names the rows it removes, the
setting that says how long they are kept (``ATRIUM_RETENTION__*``, a number of days; 0
keeps them for good) and the condition that makes a row old enough. docs/privacy.md
("Retention") is the same table in prose; keep the two in step.

Rows are removed by :mod:`atrium.retention.service` in batches of
``retention.batch_size``, each in its own short transaction: ``DELETE … WHERE key IN
(SELECT key … ORDER BY age LIMIT n FOR UPDATE SKIP LOCKED)`` on PostgreSQL (a batch never
waits on rows another transaction holds, and two passes never wait on each other), the
same without the lock clause on SQLite's single writer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select

from atrium.config import Settings
from atrium.models import (
    ApiKey,
    AuditEvent,
    AuthSession,
    DataExport,
    DeliveryStatus,
    EmailToken,
    Event,
    EventDelivery,
    ExportStatus,
    MfaChallenge,
    Notification,
    OAuthTicket,
    OutboxMessage,
    OutboxStatus,
    TrustedDevice,
    UserActivityDay,
    WebAuthnChallenge,
    WebhookDelivery,
)

Condition = Callable[[datetime], ColumnElement[bool]]
"""Given the cutoff (now minus the kept period), the rows old enough to go."""


@dataclass(frozen=True)
class Policy:
    """One kind of record and how long it is kept.

    ``kind`` is the stable name (``atrium retention run`` prints it); ``records`` says in
    words what goes; ``days`` reads the kept period from the settings (0: kept for good,
    the policy is skipped); ``model`` and ``key`` are the table and the columns that
    identify a row; ``order`` is the age column (oldest go first); ``old_enough`` builds
    the condition; ``stored_object`` names the column holding a stored object's key, if
    the rows point at objects that must go too (deleted once the batch has committed).
    """

    kind: str
    records: str
    setting: str
    days: Callable[[Settings], float] | None
    model: Any
    key: Sequence[Any]
    order: Any
    old_enough: Condition
    stored_object: Any = None

    def cutoff(self, settings: Settings, now: datetime) -> datetime | None:
        """The time before which rows go, or None when the policy keeps them for good.
        A policy without ``days`` removes rows whose own expiry (set when they were
        written, from ``setting``) has passed: its cutoff is ``now``."""
        if self.days is None:
            return now
        days = self.days(settings)
        if days <= 0:
            return None
        return now - timedelta(days=days)

    def kept(self, settings: Settings) -> str:
        """The kept period in words, for ``atrium retention run``."""
        if self.days is None:
            return f"{settings.privacy.export_ttl_hours} h"
        days = self.days(settings)
        return "for good" if days <= 0 else f"{days:g} days"


def _past_expiry(kind: str, records: str, model: Any) -> Policy:
    """A short-lived credential (``expires_at``), kept ``ended_session_days`` after it."""
    return Policy(
        kind=kind,
        records=records,
        setting="ATRIUM_RETENTION__ENDED_SESSION_DAYS",
        days=lambda s: s.retention.ended_session_days,
        model=model,
        key=(model.id,),
        order=model.expires_at,
        old_enough=lambda cutoff: model.expires_at < cutoff,
    )


def _fully_delivered(cutoff: datetime) -> ColumnElement[bool]:
    unfinished = (
        select(EventDelivery.id)
        .where(
            EventDelivery.event_id == Event.id,
            EventDelivery.status != DeliveryStatus.delivered.value,
        )
        .exists()
    )
    return and_(Event.dispatched_at < cutoff, ~unfinished)


POLICIES: tuple[Policy, ...] = (
    Policy(
        kind="audit_events",
        records="audit events (the security trail; pseudonymised when an account is erased)",
        setting="ATRIUM_RETENTION__AUDIT_EVENT_DAYS",
        days=lambda s: s.retention.audit_event_days,
        model=AuditEvent,
        key=(AuditEvent.id,),
        order=AuditEvent.occurred_at,
        old_enough=lambda cutoff: AuditEvent.occurred_at < cutoff,
    ),
    Policy(
        kind="sessions",
        records="sessions that expired or were revoked, with their refresh tokens",
        setting="ATRIUM_RETENTION__ENDED_SESSION_DAYS",
        days=lambda s: s.retention.ended_session_days,
        model=AuthSession,
        key=(AuthSession.id,),
        order=AuthSession.expires_at,
        old_enough=lambda cutoff: or_(
            AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff
        ),
    ),
    _past_expiry(
        "email_tokens",
        "verification, reset, email-change and cancel-deletion tokens past expiry",
        EmailToken,
    ),
    Policy(
        kind="api_keys",
        records="API keys that expired or were revoked",
        setting="ATRIUM_RETENTION__ENDED_SESSION_DAYS",
        days=lambda s: s.retention.ended_session_days,
        model=ApiKey,
        key=(ApiKey.id,),
        order=ApiKey.created_at,
        old_enough=lambda cutoff: or_(ApiKey.expires_at < cutoff, ApiKey.revoked_at < cutoff),
    ),
    _past_expiry("mfa_challenges", "second-factor login challenges past expiry", MfaChallenge),
    _past_expiry("webauthn_challenges", "passkey challenges past expiry", WebAuthnChallenge),
    _past_expiry("oauth_tickets", "social sign-in tickets past expiry", OAuthTicket),
    _past_expiry(
        "trusted_devices",
        "remembered devices (skip the second factor) past expiry",
        TrustedDevice,
    ),
    Policy(
        kind="outbox_messages",
        records="email sent (or given up on) from the outbox",
        setting="ATRIUM_RETENTION__DELIVERED_MESSAGE_DAYS",
        days=lambda s: s.retention.delivered_message_days,
        model=OutboxMessage,
        key=(OutboxMessage.id,),
        order=OutboxMessage.created_at,
        old_enough=lambda cutoff: or_(
            and_(OutboxMessage.status == OutboxStatus.sent.value, OutboxMessage.sent_at < cutoff),
            and_(
                OutboxMessage.status == OutboxStatus.failed.value,
                OutboxMessage.created_at < cutoff,
            ),
        ),
    ),
    Policy(
        kind="events",
        records="events every consumer has received, with their deliveries",
        setting="ATRIUM_RETENTION__DELIVERED_MESSAGE_DAYS",
        days=lambda s: s.retention.delivered_message_days,
        model=Event,
        key=(Event.id,),
        order=Event.occurred_at,
        old_enough=_fully_delivered,
    ),
    Policy(
        kind="webhook_deliveries",
        records="webhook deliveries delivered (or given up on), with their attempt log",
        setting="ATRIUM_RETENTION__DELIVERED_MESSAGE_DAYS",
        days=lambda s: s.retention.delivered_message_days,
        model=WebhookDelivery,
        key=(WebhookDelivery.id,),
        order=WebhookDelivery.created_at,
        old_enough=lambda cutoff: or_(
            and_(
                WebhookDelivery.status == DeliveryStatus.delivered.value,
                WebhookDelivery.delivered_at < cutoff,
            ),
            and_(
                WebhookDelivery.status == DeliveryStatus.failed.value,
                WebhookDelivery.created_at < cutoff,
            ),
        ),
    ),
    Policy(
        kind="read_notifications",
        records="inbox notices read by their account",
        setting="ATRIUM_RETENTION__READ_NOTIFICATION_DAYS",
        days=lambda s: s.retention.read_notification_days,
        model=Notification,
        key=(Notification.id,),
        order=Notification.read_at,
        old_enough=lambda cutoff: Notification.read_at < cutoff,
    ),
    Policy(
        kind="activity",
        records="per-account daily activity (first/last seen, requests, logins, sessions)",
        setting="ATRIUM_RETENTION__ACTIVITY_DAYS",
        days=lambda s: s.retention.activity_days,
        model=UserActivityDay,
        key=(UserActivityDay.user_id, UserActivityDay.day),
        order=UserActivityDay.day,
        old_enough=lambda cutoff: UserActivityDay.day < cutoff.date(),
    ),
    Policy(
        kind="exports",
        records="data exports (the ZIP and its row) past their download window",
        setting="ATRIUM_PRIVACY__EXPORT_TTL_HOURS",
        days=None,  # expires_at = ready + privacy.export_ttl_hours
        model=DataExport,
        key=(DataExport.id,),
        order=DataExport.expires_at,
        old_enough=lambda cutoff: and_(
            DataExport.status.in_([ExportStatus.ready.value, ExportStatus.failed.value]),
            DataExport.expires_at <= cutoff,
        ),
        stored_object=DataExport.storage_key,
    ),
)
"""Every policy, in the order a pass applies them."""


def policy_kinds() -> list[str]:
    return [p.kind for p in POLICIES]
