"""The export ZIP of one account, written by streaming (GDPR arts. 15 and 20).

:func:`write_archive` writes every file of :data:`FILES` and the account's stored files
and avatars into a ZIP on local disk: JSON lists are written a page of rows at a time,
stored objects a 64 KiB chunk at a time (``zipfile``'s streaming entries, ZIP64 so that
no size is a limit), so memory stays flat whatever the account holds. ``zipfile`` calls
run in a worker thread (blocking file I/O off the event loop). ``README.txt`` describes
every file and field, from the same table the writer follows
(:data:`atrium.privacy.readme.FILES`).

Nothing secret is exported: no password hash, no second-factor secret, recovery code,
API key, refresh token or passkey public key — their metadata only.
"""

from __future__ import annotations

import json
import re
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import list_security_events
from atrium.core.pagination import MAX_LIMIT
from atrium.core.storage import ObjectNotFound, Storage
from atrium.models import (
    ApiKey,
    AuthSession,
    MfaFactor,
    MfaRecoveryCode,
    Notification,
    Passkey,
    Profile,
    StoredFile,
    TrustedDevice,
    User,
    UserIdentity,
)
from atrium.privacy.readme import FILES, readme
from atrium.privacy.repository import ExportRepository
from atrium.profiles.avatar import avatar_key
from atrium.profiles.preferences import preferences_of


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _row(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    return {name: _value(getattr(obj, name)) for name in fields}


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, default=str).encode()


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def member_name(stored: StoredFile) -> str:
    """The archive path of a stored file: ``files/<id>_<name>`` with the name reduced to
    safe characters (never a path of its own)."""
    name = _SAFE.sub("_", stored.filename).strip("._")[:100] or "file"
    return f"files/{stored.id}_{name}"


class ZipSink:
    """A ZIP file on local disk written entry by entry, each call in a worker thread."""

    def __init__(self, path: Path) -> None:
        self.zf = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True)

    async def open(self, name: str) -> IO[bytes]:
        return await anyio.to_thread.run_sync(lambda: self.zf.open(name, "w", force_zip64=True))

    async def write(self, entry: IO[bytes], data: bytes) -> None:
        await anyio.to_thread.run_sync(entry.write, data)

    async def close_entry(self, entry: IO[bytes]) -> None:
        await anyio.to_thread.run_sync(entry.close)

    async def whole(self, name: str, data: bytes) -> None:
        entry = await self.open(name)
        await self.write(entry, data)
        await self.close_entry(entry)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self.zf.close)

    async def json_list(self, name: str, pages: AsyncIterator[list[dict[str, Any]]]) -> int:
        """Write a JSON array one page at a time; returns the number of items."""
        entry = await self.open(name)
        count = 0
        await self.write(entry, b"[")
        async for page in pages:
            if not page:
                continue
            parts = [_json(item) for item in page]
            await self.write(entry, (b",\n" if count else b"\n") + b",\n".join(parts))
            count += len(page)
        await self.write(entry, b"\n]\n")
        await self.close_entry(entry)
        return count


ActivityReader = Callable[[AsyncSession, uuid.UUID], AsyncIterator[list[dict[str, Any]]]]


async def _no_activity(db: AsyncSession, user_id: uuid.UUID) -> AsyncIterator[list[dict[str, Any]]]:
    """No activity is recorded by this version (the activity rollup is not installed)."""
    return
    yield []  # pragma: no cover - makes this an async generator


async def write_archive(
    db: AsyncSession,
    storage: Storage,
    user_id: uuid.UUID,
    path: Path,
    *,
    avatar_sizes: list[int],
    activity: ActivityReader = _no_activity,
) -> None:
    """Write the archive of ``user_id`` to ``path`` (a new ZIP file).

    Raises:
        LookupError: the account does not exist (any more).
        StorageError: a stored object could not be read.
    """
    repo = ExportRepository(db)
    user = await db.get(User, user_id)
    if user is None:
        raise LookupError("the account no longer exists")
    account = _row(
        user,
        (
            "id",
            "email",
            "email_verified_at",
            "full_name",
            "username",
            "status",
            "profile_verified",
            "locale",
            "created_at",
            "updated_at",
            "last_login_at",
            "deletion_due_at",
        ),
    )
    account["roles"] = await repo.role_names(user_id)
    profile = await db.get(Profile, user_id)
    profile_doc = _row(profile, FILES[1].fields) if profile is not None else None
    avatar_version = profile.avatar_version if profile is not None else None
    preferences = (await preferences_of(db, user_id)).model_dump(mode="json")

    sink = ZipSink(path)
    try:
        await sink.whole("README.txt", readme().encode())
        await sink.whole("account.json", _json(account))
        await sink.whole("profile.json", _json(profile_doc))
        await sink.whole("preferences.json", _json(preferences))

        async def rows(
            model: Any, owner: Any, fields: Iterable[str]
        ) -> AsyncIterator[list[dict[str, Any]]]:
            names = tuple(fields)
            async for page in repo.pages(model, owner, user_id):
                yield [_row(r, names) for r in page]

        await sink.json_list(
            "sessions.json", rows(AuthSession, AuthSession.user_id, FILES[3].fields)
        )
        await sink.json_list("security-events.json", _security_events(db, user_id))
        await sink.json_list(
            "notifications.json", rows(Notification, Notification.user_id, FILES[5].fields)
        )
        await sink.json_list(
            "identities.json", rows(UserIdentity, UserIdentity.user_id, FILES[6].fields)
        )
        await sink.whole("mfa.json", _json(await _mfa(db, repo, user_id)))
        await sink.json_list("api-keys.json", rows(ApiKey, ApiKey.user_id, FILES[8].fields))
        await sink.json_list("activity.json", activity(db, user_id))

        stored: list[StoredFile] = []

        async def files_meta() -> AsyncIterator[list[dict[str, Any]]]:
            async for page in repo.pages(StoredFile, StoredFile.owner_id, user_id):
                stored.extend(page)
                yield [
                    {
                        **_row(f, ("id", "filename", "content_type", "size_bytes", "sha256")),
                        "created_at": _value(f.created_at),
                        "path": member_name(f),
                    }
                    for f in page
                ]

        await sink.json_list("files.json", files_meta())
        for f in stored:
            await _copy(sink, storage, f.storage_key, member_name(f))
        if avatar_version:
            for size in avatar_sizes:
                key = avatar_key(user_id, avatar_version, size)
                await _copy(sink, storage, key, f"files/avatar/{size}.webp")
    finally:
        await sink.close()


async def _copy(sink: ZipSink, storage: Storage, key: str, name: str) -> None:
    """Stream one stored object into the archive (a missing object is skipped)."""
    chunks = aiter(storage.stream(key))
    try:
        first = await anext(chunks, b"")
    except ObjectNotFound:
        return
    entry = await sink.open(name)
    try:
        await sink.write(entry, first)
        async for chunk in chunks:
            await sink.write(entry, chunk)
    finally:
        await sink.close_entry(entry)


async def _security_events(
    db: AsyncSession, user_id: uuid.UUID
) -> AsyncIterator[list[dict[str, Any]]]:
    cursor: str | None = None
    while True:
        page = await list_security_events(db, user_id, limit=MAX_LIMIT, cursor=cursor)
        yield [item.model_dump(mode="json") for item in page.items]
        if page.next_cursor is None:
            return
        cursor = page.next_cursor


async def _mfa(db: AsyncSession, repo: ExportRepository, user_id: uuid.UUID) -> dict[str, Any]:
    """Second factors, trusted devices and passkeys of one account (a few rows each)."""
    factors = [
        _row(f, ("id", "type", "name", "created_at", "verified_at", "last_used_at"))
        async for page in repo.pages(MfaFactor, MfaFactor.user_id, user_id)
        for f in page
    ]
    devices = [
        _row(d, ("id", "created_at", "expires_at", "last_used_at", "user_agent", "ip_address"))
        async for page in repo.pages(TrustedDevice, TrustedDevice.user_id, user_id)
        for d in page
    ]
    passkeys = [
        _row(
            p,
            (
                "id",
                "name",
                "aaguid",
                "device_type",
                "backed_up",
                "transports",
                "created_at",
                "last_used_at",
            ),
        )
        async for page in repo.pages(Passkey, Passkey.user_id, user_id)
        for p in page
    ]
    total, unused = (
        await db.execute(
            select(
                func.count(MfaRecoveryCode.id),
                func.count(MfaRecoveryCode.id).filter(MfaRecoveryCode.used_at.is_(None)),
            ).where(MfaRecoveryCode.user_id == user_id)
        )
    ).one()
    return {
        "factors": factors,
        "recovery_codes": {"total": total, "unused": unused},
        "trusted_devices": devices,
        "passkeys": passkeys,
    }
