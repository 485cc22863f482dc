"""The job ``social.import_avatars``: a new social account takes its provider's picture.

Social login queues the picture's URL (OIDC ``picture``, GitHub ``avatar_url``) when it
creates an account (:meth:`atrium.social.repository.TicketRepository.queue_avatar_import`,
in the login's transaction). The worker's leader claims queued imports and, for each:

1. checks the URL and every address its host resolves to with the SSRF rules of
   :mod:`atrium.core.ssrf` (public addresses only, unless
   ``social.avatar_allow_loopback`` / ``avatar_allow_private_networks``), then connects to
   the checked address (no DNS rebinding), follows no redirect, gives up after
   ``social.http_timeout_seconds`` and reads at most ``avatars.max_bytes``;
2. re-encodes the image exactly as an upload (:func:`atrium.profiles.avatar.process_avatar`:
   JPEG, PNG, WebP or GIF, pixel limit, metadata dropped, square WebP sizes);
3. sets it as the avatar only if the account still has none (an upload in the meantime
   wins), audited as ``profile.avatar_changed`` with ``source: social``.

An import is tried once: a refused URL, a slow or failing provider or an image that is
not one is logged (``avatar_import_failed``) and dropped; the account keeps its
initials. The provider's login never waits on any of this.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx
import structlog

from atrium.audit.service import record
from atrium.config import Settings
from atrium.core.db import after_rollback, unit_of_work
from atrium.core.jobs import JobContext
from atrium.core.outbound import tls_context
from atrium.core.ssrf import PinnedTransport, UrlRefused, parse_url, pin
from atrium.core.storage import Storage, create_storage, delete_objects
from atrium.errors import AppError
from atrium.models import User
from atrium.profiles.avatar import (
    CONTENT_TYPE,
    ProcessedAvatar,
    avatar_key,
    avatar_keys,
    process_avatar,
)
from atrium.profiles.repository import ProfileRepository
from atrium.social.repository import TicketRepository

log = structlog.get_logger(__name__)

PER_PASS = 20


class PictureRefused(Exception):
    """The provider's picture could not be used (the reason is the message)."""


async def fetch_picture(url: str, settings: Settings) -> bytes:
    """The bytes at ``url``, fetched under the SSRF rules (see the module docstring).

    Raises:
        PictureRefused: refused URL or address, not a 200, too large, or a network error.
    """
    policy = _Policy(settings)
    try:
        target = parse_url(url, policy)
        address = await pin(target, policy)
    except UrlRefused as exc:
        raise PictureRefused(str(exc)) from None
    limit = settings.avatars.max_bytes
    timeout = settings.social.http_timeout_seconds
    transport = PinnedTransport(address, verify=tls_context())
    try:
        async with (
            httpx.AsyncClient(
                transport=transport, timeout=timeout, follow_redirects=False
            ) as client,
            client.stream("GET", url, headers={"Accept": "image/*"}) as response,
        ):
            if response.status_code != 200:
                raise PictureRefused(f"the provider answered {response.status_code}")
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise PictureRefused(f"the picture is larger than {limit} bytes")
            parts: list[bytes] = []
            total = 0
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > limit:
                    raise PictureRefused(f"the picture is larger than {limit} bytes")
                parts.append(chunk)
            return b"".join(parts)
    except httpx.HTTPError as exc:
        raise PictureRefused(f"{type(exc).__name__}: {exc}") from None


class _Policy:
    def __init__(self, settings: Settings) -> None:
        self.allow_loopback = settings.social.avatar_allow_loopback
        self.allow_private_networks = settings.social.avatar_allow_private_networks


async def import_avatar(ctx: JobContext, storage: Storage, user_id: uuid.UUID, url: str) -> bool:
    """Fetch, re-encode and set one account's avatar; True when it was set."""
    settings = ctx.settings
    try:
        data = await fetch_picture(url, settings)
        processed = await anyio.to_thread.run_sync(
            lambda: process_avatar(
                data,
                max_pixels=settings.avatars.max_pixels,
                sizes=settings.avatars.sizes,
                quality=settings.avatars.webp_quality,
            )
        )
    except (PictureRefused, AppError) as exc:
        log.warning("avatar_import_failed", user_id=str(user_id), reason=str(exc))
        return False
    return await _store(ctx, storage, user_id, processed)


async def _store(
    ctx: JobContext, storage: Storage, user_id: uuid.UUID, processed: ProcessedAvatar
) -> bool:
    sizes = ctx.settings.avatars.sizes
    async with unit_of_work(ctx.sessionmaker) as db:
        user = await db.get(User, user_id, with_for_update=True)
        if user is None or user.deleted_at is not None:
            return False
        now = ctx.clock.now()
        profile = await ProfileRepository(db).get_or_add(user_id, now)
        if profile.avatar_version is not None:
            return False  # the owner chose one meanwhile
        keys = avatar_keys(user_id, processed.version, sizes)

        async def discard() -> None:
            await delete_objects(storage, keys)

        after_rollback(db, discard)
        for size, image in processed.images.items():
            key = avatar_key(user_id, processed.version, size)
            await storage.put_bytes(key, image, CONTENT_TYPE)
        profile.avatar_version = processed.version
        profile.updated_at = now
        await record(
            db,
            "profile.avatar_changed",
            at=now,
            actor_id=user_id,
            target_type="user",
            target_id=user_id,
            details={
                "version": processed.version,
                "source_format": processed.source_format,
                "source": "social",
            },
        )
    return True


async def import_avatars_job(ctx: JobContext) -> None:
    """``social.import_avatars``: up to :data:`PER_PASS` queued imports per pass."""
    async with unit_of_work(ctx.sessionmaker) as db:
        queued: list[dict[str, Any]] = await TicketRepository(db).claim_avatar_imports(
            ctx.clock.now(), PER_PASS
        )
    if not queued:
        return
    storage = create_storage(ctx.settings)
    try:
        done = 0
        for item in queued:
            try:
                done += await import_avatar(ctx, storage, uuid.UUID(item["user_id"]), item["url"])
            except Exception:  # one account's import never stops the others
                log.exception("avatar_import_failed", user_id=item.get("user_id"))
    finally:
        await storage.close()
    log.info("avatars_imported", imported=done, tried=len(queued))
