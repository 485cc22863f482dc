"""Applying the retention policies (:mod:`atrium.retention.policies`).

:func:`apply_retention` is one pass: for each policy, delete its old-enough rows in
batches of ``retention.batch_size``, one short transaction per batch, until a batch comes
back short (or, ``dry_run``, only count them). The scheduled job ``retention.run`` (every
``retention.interval_seconds``, by the worker's leader) and ``atrium retention run
[--dry-run]`` both call it. A pass is idempotent: one cut short is finished by the next.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.config import Settings
from atrium.core.db import after_commit, unit_of_work
from atrium.core.jobs import JobContext
from atrium.core.storage import Storage, create_storage, delete_objects
from atrium.retention.policies import POLICIES, Policy

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a pass did (or, dry, would do) for one policy. ``cutoff`` is None when the
    policy keeps its rows for good (then ``rows`` is 0)."""

    policy: Policy
    kept: str
    cutoff: datetime | None
    rows: int


async def _count(db: AsyncSession, policy: Policy, cutoff: datetime) -> int:
    query = select(func.count()).select_from(policy.model).where(policy.old_enough(cutoff))
    return int((await db.execute(query)).scalar_one())


async def _delete_batch(
    db: AsyncSession, policy: Policy, cutoff: datetime, limit: int, storage: Storage
) -> int:
    """Delete up to ``limit`` of the oldest rows old enough; how many. Their stored
    objects, if any, are deleted once the batch has committed."""
    columns = [*policy.key]
    if policy.stored_object is not None:
        columns.append(policy.stored_object)
    chosen = select(*columns).where(policy.old_enough(cutoff)).order_by(policy.order).limit(limit)
    if db.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    rows = (await db.execute(chosen)).all()
    if not rows:
        return 0
    width = len(policy.key)
    keys = [tuple(row[:width]) for row in rows]
    target = tuple_(*policy.key) if width > 1 else policy.key[0]
    values = keys if width > 1 else [k[0] for k in keys]
    await db.execute(
        delete(policy.model).where(target.in_(values)).execution_options(synchronize_session=False)
    )
    objects = [row[width] for row in rows if policy.stored_object is not None and row[width]]
    if objects:

        async def drop(keys: list[str] = objects) -> None:
            await delete_objects(storage, keys)

        after_commit(db, drop)
    return len(rows)


async def apply_policy(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    policy: Policy,
    now: datetime,
    storage: Storage,
    *,
    dry_run: bool = False,
) -> Outcome:
    """Apply one policy; see :func:`apply_retention`."""
    cutoff = policy.cutoff(settings, now)
    kept = policy.kept(settings)
    if cutoff is None:
        return Outcome(policy, kept, None, 0)
    if dry_run:
        async with sessionmaker() as db:
            return Outcome(policy, kept, cutoff, await _count(db, policy, cutoff))
    batch = settings.retention.batch_size
    total = 0
    while True:
        async with unit_of_work(sessionmaker) as db:
            deleted = await _delete_batch(db, policy, cutoff, batch, storage)
        total += deleted
        if deleted < batch:
            return Outcome(policy, kept, cutoff, total)


async def apply_retention(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime,
    storage: Storage,
    *,
    dry_run: bool = False,
    policies: Sequence[Policy] = POLICIES,
) -> list[Outcome]:
    """One pass of every policy at ``now``: returns, per policy, the rows deleted (or,
    ``dry_run``, the rows that would be; nothing is written). ``storage`` deletes the
    objects that deleted rows pointed at (export ZIPs), once their batch has committed.

    Raises whatever the database raises (an outage: the job is retried on its next pass;
    batches already committed stay deleted)."""
    return [
        await apply_policy(sessionmaker, settings, p, now, storage, dry_run=dry_run)
        for p in policies
    ]


async def retention_job(ctx: JobContext) -> None:
    """``retention.run``: one pass of every policy (the worker's leader)."""
    if not ctx.settings.retention.enabled:
        return
    storage = create_storage(ctx.settings)
    try:
        outcomes = await apply_retention(ctx.sessionmaker, ctx.settings, ctx.clock.now(), storage)
    finally:
        await storage.close()
    # One string, not a field per kind: kinds such as "email_tokens" would be redacted.
    removed = " ".join(f"{o.policy.kind}={o.rows}" for o in outcomes if o.rows)
    if removed:
        log.info("retention_applied", removed=removed)


async def run_from_command(settings: Settings, now: datetime, *, dry_run: bool) -> list[Outcome]:
    """``atrium retention run``: one pass over an engine of its own (no statement time-out:
    a first pass over years of rows may take a while)."""
    from atrium.core.db import create_engine, create_sessionmaker

    engine = create_engine(settings, statement_timeouts=False)
    storage = create_storage(settings)
    try:
        return await apply_retention(
            create_sessionmaker(engine), settings, now, storage, dry_run=dry_run
        )
    finally:
        await storage.close()
        await engine.dispose()


def format_outcomes(outcomes: Sequence[Outcome], *, dry_run: bool) -> list[str]:
    """One line per policy: kind, kept period, cutoff and rows; then the total."""
    verb = "would remove" if dry_run else "removed"
    lines = [f"{'kind':<20} {'kept':<10} {'older than':<26} {verb}"]
    for o in outcomes:
        cutoff = o.cutoff.isoformat(timespec="seconds") if o.cutoff else "-"
        lines.append(f"{o.policy.kind:<20} {o.kept:<10} {cutoff:<26} {o.rows}")
    lines.append(f"{verb} {sum(o.rows for o in outcomes)} rows in all")
    return lines
