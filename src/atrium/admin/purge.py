"""Removing soft-deleted accounts for good once their retention has passed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.account.erasure import erase_accounts
from atrium.admin.repository import AdminUserRepository
from atrium.audit.service import new_event
from atrium.core.storage import Storage


async def purge_expired(
    db: AsyncSession,
    *,
    now: datetime,
    retention_days: int,
    batch_size: int = 500,
    storage: Storage | None = None,
    avatar_sizes: list[int] | None = None,
) -> int:
    """Erase for good, in batches, accounts an administrator soft-deleted more than
    ``retention_days`` before ``now``, with the same rules as an owner's deletion
    (:func:`atrium.account.erasure.erase_accounts`: objects deleted from ``storage`` once
    ``db`` commits, audit events kept under a pseudonym, copies of the email, name and
    username redacted, ``user.deleted`` emitted). Accounts whose owner asked for their
    deletion wait for the end of their own grace period (``privacy.erase_due``). One
    ``admin.user_purged`` event (system actor, target: the pseudonym) per account.
    Returns how many."""
    repo = AdminUserRepository(db)
    cutoff = now - timedelta(days=retention_days)
    total = 0
    while ids := await repo.expired_deleted(cutoff, batch_size):
        erased = await erase_accounts(
            db, storage, ids, now=now, avatar_sizes=avatar_sizes or [64, 256, 512]
        )
        db.add_all(
            [
                new_event(
                    "admin.user_purged",
                    at=now,
                    actor_id=None,
                    target_type="user",
                    target_id=item.pseudonym,
                )
                for item in erased
            ]
        )
        await db.flush()
        total += len(ids)
    return total
