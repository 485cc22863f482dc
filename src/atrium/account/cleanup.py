"""Deleting the stored objects of accounts that are being deleted.

Rows go with the account (foreign keys cascade); objects in storage do not, so every path
that deletes accounts (self-deletion, the retention purge) calls
:func:`delete_user_objects` before deleting the rows: it collects the keys while the rows
still exist and deletes the objects only once the transaction has committed. A rollback
leaves both rows and objects in place; nothing is orphaned either way.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.db import after_commit
from atrium.core.storage import Storage, delete_objects
from atrium.files.repository import FileRepository
from atrium.profiles.avatar import avatar_keys
from atrium.profiles.repository import ProfileRepository


async def delete_user_objects(
    db: AsyncSession, storage: Storage, avatar_sizes: list[int], user_ids: list[uuid.UUID]
) -> list[str]:
    """Schedule the deletion of every object of ``user_ids`` (each avatar size, every
    file) for after ``db`` commits. Returns the keys."""
    keys: list[str] = []
    for uid, version in (await ProfileRepository(db).avatar_versions(user_ids)).items():
        keys.extend(avatar_keys(uid, version, avatar_sizes))
    keys.extend(await FileRepository(db).storage_keys_of_owners(user_ids))
    if keys:

        async def drop() -> None:
            await delete_objects(storage, keys)

        after_commit(db, drop)
    return keys
