"""Orphan-free deletion on both storage backends: deleting a file, an avatar or an account
(self-deletion, retention purge) deletes every stored object, only after the commit; a
rolled-back transaction leaves objects and rows as they were."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from atrium.admin.service import purge_expired
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.db import unit_of_work
from atrium.core.jobs import JobContext
from atrium.core.storage import LocalStorage
from atrium.errors import AppError
from atrium.privacy.jobs import erase_due_accounts
from tests.factories import PASSWORD, login, signed_in, signed_in_as
from tests.files.test_files import PDF
from tests.images import image_bytes


async def stored_keys(ctx: AppContext) -> set[str]:
    storage = ctx.storage
    if isinstance(storage, LocalStorage):
        root = storage.root

        def walk() -> set[str]:
            if not root.exists():
                return set()
            return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

        return await anyio.to_thread.run_sync(walk)
    client: Any = storage.client  # type: ignore[attr-defined]
    bucket: str = storage.bucket  # type: ignore[attr-defined]
    listing = await anyio.to_thread.run_sync(lambda: client.list_objects_v2(Bucket=bucket))
    return {item["Key"] for item in listing.get("Contents", [])}


async def populate(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    avatar = await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("a.png", image_bytes("PNG", (40, 40)), "image/png")},
        headers=auth,
    )
    assert avatar.status_code == 200, avatar.text
    for _ in range(2):
        uploaded = await client.post(
            "/api/v1/files", files={"file": ("r.pdf", PDF, "application/pdf")}, headers=auth
        )
        assert uploaded.status_code == 201, uploaded.text


class Boom(AppError):
    status = 409
    code = "boom"
    title = "Injected failure"


def fail_audit(monkeypatch: pytest.MonkeyPatch, module: str, action: str) -> None:
    """Make ``record(action)`` in ``module`` raise, so the request's transaction rolls back
    after the storage work was done."""
    import importlib

    target = importlib.import_module(module)
    real = target.record

    async def failing(db: Any, name: str, **kwargs: Any) -> None:
        if name == action:
            raise Boom("injected")
        await real(db, name, **kwargs)

    monkeypatch.setattr(target, "record", failing)


async def test_account_deletion_deletes_every_object(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client, "leaving@example.com")
    keep = await signed_in(client, "staying@example.com")
    await populate(client, auth)
    await populate(client, keep)
    kept = {k for k in await stored_keys(ctx)}
    assert len(kept) == 2 * (3 + 2)

    response = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=auth
    )

    assert response.status_code == 202
    staying_id = (await client.get("/api/v1/users/me", headers=keep)).json()["id"]
    assert await stored_keys(ctx) == kept  # kept during the grace period
    clock.advance(days=30)
    context = JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {})
    assert await erase_due_accounts(context, ctx.storage) == 1
    remaining = await stored_keys(ctx)
    assert len(remaining) == 3 + 2
    assert all(staying_id in key for key in remaining)


async def test_failed_account_deletion_keeps_every_object(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = await signed_in(client)
    await populate(client, auth)
    before = await stored_keys(ctx)
    ctx.settings.privacy.deletion_grace_days = 0  # erased in the request
    fail_audit(monkeypatch, "atrium.account.erasure", "user.erased")

    response = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=auth
    )

    assert response.status_code == 409
    assert await stored_keys(ctx) == before
    # The session's access token was revoked before the rollback (the revocation is
    # published before the commit); a new login sees the files still there.
    tokens = await login(client, "ada@example.com")
    again = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert len((await client.get("/api/v1/files", headers=again)).json()["items"]) == 2


async def test_purge_deletes_the_objects_of_purged_accounts(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    user_id, auth = await signed_in_as(client, ctx, "purged@example.com")
    await populate(client, auth)
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    assert (await client.delete(f"/api/v1/admin/users/{user_id}", headers=admin)).status_code == 204
    assert len(await stored_keys(ctx)) == 5  # soft-deleted: restorable, objects kept
    clock.advance(days=ctx.settings.accounts.deleted_retention_days + 1)

    async with unit_of_work(ctx.sessionmaker) as db:
        purged = await purge_expired(
            db,
            now=clock.now(),
            retention_days=ctx.settings.accounts.deleted_retention_days,
            storage=ctx.storage,
            avatar_sizes=ctx.settings.avatars.sizes,
        )

    assert purged == 1
    assert await stored_keys(ctx) == set()


async def test_rolled_back_purge_keeps_the_objects(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    user_id, auth = await signed_in_as(client, ctx, "purged@example.com")
    await populate(client, auth)
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    await client.delete(f"/api/v1/admin/users/{user_id}", headers=admin)
    clock.advance(days=ctx.settings.accounts.deleted_retention_days + 1)

    async def purge_then_crash() -> None:
        async with unit_of_work(ctx.sessionmaker) as db:
            await purge_expired(
                db,
                now=clock.now(),
                retention_days=ctx.settings.accounts.deleted_retention_days,
                storage=ctx.storage,
                avatar_sizes=ctx.settings.avatars.sizes,
            )
            raise RuntimeError("crash before the commit")

    with pytest.raises(RuntimeError):
        await purge_then_crash()

    assert len(await stored_keys(ctx)) == 5


async def test_file_deletion_deletes_the_object(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await signed_in(client)
    created = await client.post(
        "/api/v1/files", files={"file": ("r.pdf", PDF, "application/pdf")}, headers=auth
    )
    assert len(await stored_keys(ctx)) == 1

    response = await client.delete(f"/api/v1/files/{created.json()['id']}", headers=auth)

    assert response.status_code == 204
    assert await stored_keys(ctx) == set()


async def test_failed_file_deletion_keeps_the_object(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = await signed_in(client)
    created = await client.post(
        "/api/v1/files", files={"file": ("r.pdf", PDF, "application/pdf")}, headers=auth
    )
    fail_audit(monkeypatch, "atrium.files.service", "file.deleted")

    response = await client.delete(f"/api/v1/files/{created.json()['id']}", headers=auth)

    assert response.status_code == 409
    assert len(await stored_keys(ctx)) == 1
    content = await client.get(created.json()["content_url"], headers=auth)
    assert content.content == PDF


async def test_rolled_back_upload_leaves_no_object(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = await signed_in(client)
    fail_audit(monkeypatch, "atrium.files.service", "file.uploaded")

    response = await client.post(
        "/api/v1/files", files={"file": ("r.pdf", PDF, "application/pdf")}, headers=auth
    )

    assert response.status_code == 409
    assert await stored_keys(ctx) == set()


async def test_rolled_back_avatar_change_keeps_the_old_avatar(
    client: httpx.AsyncClient, ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = await signed_in(client)
    first = await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("a.png", image_bytes("PNG", (10, 10)), "image/png")},
        headers=auth,
    )
    before = await stored_keys(ctx)
    fail_audit(monkeypatch, "atrium.profiles.avatars", "profile.avatar_changed")

    response = await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("b.png", image_bytes("PNG", (12, 12)), "image/png")},
        headers=auth,
    )

    assert response.status_code == 409
    assert await stored_keys(ctx) == before
    for url in first.json()["avatar"].values():
        assert (await client.get(url)).status_code == 200


async def test_avatar_delete_removes_all_sizes_from_storage(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("a.png", image_bytes("PNG", (10, 10)), "image/png")},
        headers=auth,
    )
    assert {k.rsplit("/", 1)[1] for k in await stored_keys(ctx)} == {
        "64.webp",
        "256.webp",
        "512.webp",
    }

    await client.delete("/api/v1/users/me/avatar", headers=auth)

    assert await stored_keys(ctx) == set()


async def test_presigned_downloads_redirect_to_the_object_store(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    if ctx.settings.storage.backend != "s3":
        pytest.skip("presigned URLs are an S3 feature")
    ctx.storage.presign = True  # type: ignore[attr-defined]
    auth = await signed_in(client)
    created = await client.post(
        "/api/v1/files", files={"file": ("r é.pdf", PDF, "application/pdf")}, headers=auth
    )

    response = await client.get(created.json()["content_url"], headers=auth)

    assert response.status_code == 307
    async with httpx.AsyncClient() as outside:
        fetched = await outside.get(response.headers["location"])
    assert fetched.content == PDF
    assert fetched.headers["content-disposition"].startswith('attachment; filename="r e.pdf"')
    assert fetched.headers["content-type"] == "application/pdf"
