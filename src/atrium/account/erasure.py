"""Erasing accounts for good (GDPR art. 17): every path that removes an account — the end
of its owner's grace period, a deletion with no grace period, the purge of accounts an
administrator soft-deleted — goes through :func:`erase_accounts`, so the same rules apply.

For each account, in the caller's transaction:

1. Stored objects (avatar sizes, files, export ZIPs) are collected and deleted once the
   transaction commits (:func:`atrium.account.cleanup.delete_user_objects`).
2. The audit trail keeps its events, with the account replaced by a pseudonym: a new
   random UUID per account, the same in every event of that account (so the trail still
   reads as one actor), with no link back to the account kept anywhere. The address and
   client of the events the account caused are cleared.
3. Queued email to the account is dropped.
4. The account's email address, name, username and display name are redacted
   (``[erased]``) wherever they were copied as text: audit details and changes, event
   payloads, webhook deliveries and attempts, other accounts' notices, import errors,
   OAuth tickets (:data:`TEXT_TABLES`).
5. The account row goes, and with it (foreign keys cascade) its sessions and refresh
   tokens, profile, preferences, roles, files, identities, second factors, recovery codes,
   trusted devices, passkeys, API keys, notifications, email tokens and exports.
6. One ``user.erased`` audit event (subject: the pseudonym) and one ``user.deleted`` event
   (``erased: true``) per account.

The redaction looks for the values case-insensitively as whole words (not inside a longer
word), so a short username does not damage unrelated text.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import JSON, String, Text, cast, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.account.cleanup import delete_user_objects
from atrium.audit.service import record
from atrium.core.db import after_commit
from atrium.core.storage import Storage, delete_objects
from atrium.events.service import emit
from atrium.models import AuditEvent, Base, DataExport, OutboxMessage, Profile, User

ERASED: Final = "[erased]"

# Tables that may hold an account's personal data as copied text after its own rows are
# gone (the rest cascade with the account, or hold no personal data: roles, settings).
TEXT_TABLES: Final = (
    "audit_event",
    "event",
    "webhook_delivery",
    "webhook_attempt",
    "notification",
    "user_import",
    "oauth_ticket",
    "data_export",
    "job_run",
)
MIN_NEEDLE = 3


@dataclass(frozen=True)
class Erased:
    user_id: uuid.UUID
    pseudonym: uuid.UUID


def _needles(user: User, display_name: str | None) -> list[str]:
    values = {user.email, user.email_normalized, user.full_name, user.username, display_name}
    return sorted(
        {v.strip() for v in values if v and len(v.strip()) >= MIN_NEEDLE}, key=len, reverse=True
    )


def _pattern(needles: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in needles)
    return re.compile(rf"(?<![\w.@-])(?:{alternatives})(?![\w@-])", re.IGNORECASE)


def redact(value: Any, pattern: re.Pattern[str]) -> Any:
    """``value`` (text, or JSON: dicts, lists, scalars) with every match of ``pattern``
    replaced by :data:`ERASED`."""
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, dict):
        return {k: redact(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, pattern) for v in value]
    return value


async def _sweep(db: AsyncSession, needles: Sequence[str]) -> int:
    """Redact ``needles`` in every text and JSON column of :data:`TEXT_TABLES`; returns
    how many rows changed."""
    pattern = _pattern(needles)
    changed = 0
    for name in TEXT_TABLES:
        table = Base.metadata.tables[name]
        keys = list(table.primary_key.columns)
        columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
        columns = [c for c in columns if c not in keys]
        for column in columns:
            text = cast(column, Text)
            found = await db.execute(
                select(*keys, column).where(
                    or_(*[text.icontains(n, autoescape=True) for n in needles])
                )
            )
            for row in found.all():
                *pk, value = row
                new = redact(value, pattern)
                if new == value:
                    continue
                where = [k == v for k, v in zip(keys, pk, strict=True)]
                await db.execute(update(table).where(*where).values({column.name: new}))
                changed += 1
    return changed


async def erase_accounts(
    db: AsyncSession,
    storage: Storage | None,
    user_ids: Sequence[uuid.UUID],
    *,
    now: datetime,
    avatar_sizes: list[int],
    actor_id: uuid.UUID | None = None,
) -> list[Erased]:
    """Erase ``user_ids`` for good in ``db``'s transaction (see the module). Objects in
    ``storage`` are deleted after the commit (kept on a rollback). Accounts that no longer
    exist are skipped. Returns each erased account with its pseudonym."""
    users = list((await db.execute(select(User).where(User.id.in_(list(user_ids))))).scalars())
    if not users:
        return []
    ids = [u.id for u in users]
    found = await db.execute(
        select(Profile.user_id, Profile.display_name).where(Profile.user_id.in_(ids))
    )
    display = {row[0]: row[1] for row in found}
    if storage is not None:
        await delete_user_objects(db, storage, avatar_sizes, ids)
        export_keys = [
            k
            for k in (
                await db.execute(
                    select(DataExport.storage_key).where(
                        DataExport.user_id.in_(ids), DataExport.storage_key.is_not(None)
                    )
                )
            ).scalars()
            if k
        ]
        if export_keys:

            async def drop_exports() -> None:
                await delete_objects(storage, export_keys)

            after_commit(db, drop_exports)
    erased: list[Erased] = []
    for user in users:
        pseudonym = uuid.uuid4()
        erased.append(Erased(user.id, pseudonym))
        await db.execute(
            update(AuditEvent)
            .where(AuditEvent.actor_id == user.id)
            .values(actor_id=pseudonym, ip_address=None, user_agent=None)
            .execution_options(synchronize_session=False)
        )
        await db.execute(
            update(AuditEvent)
            .where(AuditEvent.target_id == str(user.id), AuditEvent.actor_id.is_(None))
            .values(ip_address=None, user_agent=None)
            .execution_options(synchronize_session=False)
        )
        await db.execute(
            update(AuditEvent)
            .where(AuditEvent.target_id == str(user.id))
            .values(target_id=str(pseudonym))
            .execution_options(synchronize_session=False)
        )
        await db.execute(
            delete(OutboxMessage)
            .where(or_(OutboxMessage.user_id == user.id, OutboxMessage.to_address == user.email))
            .execution_options(synchronize_session=False)
        )
        needles = _needles(user, display.get(user.id))
        if needles:
            await _sweep(db, needles)
    by_self = {u.id: u.deletion_due_at is not None for u in users}
    await db.execute(
        delete(User).where(User.id.in_(ids)).execution_options(synchronize_session=False)
    )
    for user in users:
        db.expunge(user)
    for item in erased:
        await record(
            db,
            "user.erased",
            at=now,
            actor_id=actor_id,
            target_type="user",
            target_id=item.pseudonym,
            details={"by_self": by_self[item.user_id]},
        )
        await emit(
            db,
            "user.deleted",
            subject=item.user_id,
            actor=actor_id,
            data={"by_self": by_self[item.user_id], "erased": True},
            at=now,
        )
    await db.flush()
    return erased
