"""Importing accounts from another identity system: validate all, then merge all or nothing.

An import reads every record, validates each (:mod:`atrium.imports.validate`), stages the
valid ones and checks them as a set (:mod:`atrium.imports.repository`). Any error — in a
record or between records — fails the whole import with every error listed by record and
line, and nothing is changed. Otherwise the records are merged in the same transaction:
an account whose email exists is updated (re-running an import never duplicates), others
are created with the ``user`` role, the listed roles, the verified flag, the profile
fields and the password hash they had (upgraded to argon2id at their first login).
``dry_run`` does all of it and rolls back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from atrium.audit.service import record
from atrium.core.cache import Cache
from atrium.imports.formats import ImportFormat, read
from atrium.imports.repository import ImportRepository
from atrium.imports.validate import StageRow, validate
from atrium.profiles.cache import forget_cached_profiles
from atrium.rbac.resolver import publish_version

MAX_ERRORS = 1000
BATCH_SIZE = 10_000


@dataclass
class ImportOutcome:
    """What an import did (or, failed or dry run, would have done): ``errors`` lists the
    first :data:`MAX_ERRORS` as ``{"record", "line", "field", "message"}``;
    ``updated_usernames`` (committed imports only) the usernames, before the import, of the
    existing accounts whose public profile it changed, for :func:`refresh_caches`."""

    records: int = 0
    created: int = 0
    updated: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    seconds: float = 0.0
    updated_usernames: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def committed(self) -> bool:
        """True when the import changed the database (ok, and not a dry run)."""
        return self.ok and not self.dry_run

    def add_error(self, rec: int, line: int | None, name: str | None, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"record": rec, "line": line, "field": name, "message": message})


async def import_users(
    engine: AsyncEngine,
    source: TextIO,
    fmt: ImportFormat,
    *,
    now: datetime,
    dry_run: bool = False,
    actor_id: uuid.UUID | None = None,
    import_id: uuid.UUID | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[[int], None] | None = None,
) -> ImportOutcome:
    """Import the accounts of ``source`` (text) in ``fmt`` into ``engine``'s database.

    ``engine`` should be built without statement bounds (``create_engine(...,
    statement_timeouts=False)``): the merge of a million records is a few long statements.
    Records with errors make the outcome ``ok`` False and change nothing; a unique
    constraint violated by a concurrent registration is reported the same way.
    """
    started = time.perf_counter()
    outcome = ImportOutcome(dry_run=dry_run)
    async with engine.connect() as conn:
        repo = ImportRepository(conn)
        await conn.begin()
        try:
            await repo.prepare()
            roles = await repo.role_names()
            batch: list[StageRow] = []
            for raw in read(source, fmt):
                if raw.record > 0:
                    outcome.records = raw.record
                result = validate(raw, roles)
                if isinstance(result, StageRow):
                    batch.append(result)
                else:
                    for name, message in result:
                        outcome.add_error(raw.record, raw.line, name, message)
                if len(batch) >= batch_size:
                    await repo.stage(batch)
                    batch.clear()
                    if progress:
                        progress(outcome.records)
            await repo.stage(batch)
            await repo.index()
            total, conflicts = await repo.conflicts(MAX_ERRORS)
            for rec, line, name, message in conflicts:
                outcome.add_error(rec, line, name, message)
            outcome.error_count += total - len(conflicts)
            outcome.errors.sort(key=lambda e: e["record"])
            updated_usernames: list[str] = []
            if outcome.ok:
                try:
                    if not dry_run:
                        updated_usernames = await repo.updated_usernames()
                    outcome.created, outcome.updated = await repo.merge(now, actor_id)
                except IntegrityError:
                    outcome.add_error(
                        0,
                        None,
                        None,
                        "an account changed during the import "
                        "(a registration with the same email or username): run it again",
                    )
            if outcome.ok and not dry_run:
                await _audit(conn, now, actor_id, import_id, fmt, outcome)
                await repo.drop()
                # An import is a job with its own connection, not a request's unit of work:
                # its one transaction commits here, all rows or none.
                await conn.commit()  # nosemgrep: commit-outside-unit-of-work
                outcome.updated_usernames = updated_usernames
            else:
                await repo.drop()
                await conn.rollback()
        except BaseException:
            await conn.rollback()
            raise
    outcome.seconds = time.perf_counter() - started
    return outcome


async def refresh_caches(cache: Cache, outcome: ImportOutcome) -> None:
    """After a committed import (nothing otherwise): drop the cached public profiles it
    changed and publish a new RBAC version in ``cache``, so that renamed usernames stop
    resolving and roles granted to existing accounts apply on every node sharing it at
    once. An import commits on a connection of its own, outside the unit of work whose
    hooks (``forget_profiles``, ``publish_change_on_commit``) do this for a request."""
    if outcome.committed:
        await forget_cached_profiles(cache, outcome.updated_usernames)
        await publish_version(cache)


async def _audit(
    conn: Any,
    now: datetime,
    actor_id: uuid.UUID | None,
    import_id: uuid.UUID | None,
    fmt: ImportFormat,
    outcome: ImportOutcome,
) -> None:
    """One audit event for the import (not one per account: an import may hold millions)."""
    async with AsyncSession(bind=conn) as session:
        await record(
            session,
            "admin.users_imported",
            at=now,
            actor_id=actor_id,
            target_type="user_import" if import_id else None,
            target_id=import_id,
            details={
                "format": fmt.value,
                "records": outcome.records,
                "created": outcome.created,
                "updated": outcome.updated,
            },
        )
        await session.flush()
