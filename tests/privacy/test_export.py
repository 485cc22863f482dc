"""Data export (GDPR arts. 15, 20): the ZIP's contents for an account with every kind of
data and nothing of another account, the email and notice, one export at a time, the
download link's lifetime and ownership, the admin export (users:export, audited)."""

from __future__ import annotations

import io
import json
import uuid
import zipfile

import httpx
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuditEvent, DataExport, Notification, OutboxMessage
from atrium.privacy.jobs import build_pending_exports
from atrium.privacy.readme import FILES
from atrium.retention.policies import POLICIES
from atrium.retention.service import apply_policy
from tests.dispatch import dispatch
from tests.factories import login, signed_in, signed_in_as
from tests.privacy.helpers import Account, job_context, rich_account

EXPORTS = "/api/v1/users/me/exports"
LISTED = {
    "README.txt",
    "account.json",
    "profile.json",
    "preferences.json",
    "sessions.json",
    "security-events.json",
    "notifications.json",
    "identities.json",
    "mfa.json",
    "api-keys.json",
    "activity.json",
    "files.json",
}


async def build(ctx: AppContext) -> int:
    return await build_pending_exports(job_context(ctx), ctx.storage)


async def ready_export(client: httpx.AsyncClient, ctx: AppContext, account: Account) -> str:
    r = await client.post(EXPORTS, headers=account.auth)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending"
    assert await build(ctx) == 1
    return str(r.json()["id"])


async def download(client: httpx.AsyncClient, account: Account, export_id: str) -> zipfile.ZipFile:
    r = await client.get(f"{EXPORTS}/{export_id}/download", headers=account.auth)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert "attachment" in r.headers["content-disposition"]
    return zipfile.ZipFile(io.BytesIO(r.content))


async def test_export_zip_holds_every_file_of_the_issue_with_the_accounts_data(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await rich_account(client, ctx, "ada")
    zf = await download(client, ada, await ready_export(client, ctx, ada))
    names = set(zf.namelist())
    assert names >= LISTED
    account = json.loads(zf.read("account.json"))
    assert (account["id"], account["email"], account["full_name"]) == (
        ada.id,
        ada.email,
        ada.full_name,
    )
    assert account["username"] == ada.username
    assert account["roles"] == ["user"]
    assert json.loads(zf.read("profile.json"))["bio"] == "bio of ada"
    assert json.loads(zf.read("preferences.json"))["theme"] == "dark"
    sessions = json.loads(zf.read("sessions.json"))
    assert [s["user_agent"] for s in sessions] == ["agent-ada"]
    actions = {e["action"] for e in json.loads(zf.read("security-events.json"))}
    assert {"user.registered", "auth.login_succeeded"} <= actions
    assert [n["title"] for n in json.loads(zf.read("notifications.json"))] == ["Hello ada"]
    assert [i["subject"] for i in json.loads(zf.read("identities.json"))] == ["gh-ada"]
    mfa = json.loads(zf.read("mfa.json"))
    assert [f["name"] for f in mfa["factors"]] == ["phone ada"]
    assert mfa["recovery_codes"] == {"total": 1, "unused": 1}
    assert [k["name"] for k in json.loads(zf.read("api-keys.json"))] == ["key ada"]
    (day,) = json.loads(zf.read("activity.json"))
    assert (day["requests"], day["logins"]) == (7, 1)
    (meta,) = json.loads(zf.read("files.json"))
    assert meta["filename"] == "report ada.pdf"
    assert zf.read(meta["path"]) == ada.file_bytes
    avatars = sorted(n for n in names if n.startswith("files/avatar/"))
    assert avatars == sorted(f"files/avatar/{s}.webp" for s in ctx.settings.avatars.sizes)
    assert all(zf.read(n)[8:12] == b"WEBP" for n in avatars)


async def test_export_holds_no_secret_and_nothing_of_another_account(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await rich_account(client, ctx, "ada")
    bob = await rich_account(client, ctx, "bob")
    zf = await download(client, ada, await ready_export(client, ctx, ada))
    blob = b"".join(zf.read(n) for n in zf.namelist())
    for needle in (bob.id, bob.email, bob.username, bob.full_name, "gh-bob", "key bob"):
        assert needle.encode() not in blob
    assert bob.file_bytes not in blob
    assert ada.secret.encode() not in blob
    for forbidden in (b"password_hash", b"secret_encrypted", b"key_hash", b"code_hash"):
        assert forbidden not in blob


async def test_readme_describes_every_file_and_field(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await rich_account(client, ctx, "ada")
    zf = await download(client, ada, await ready_export(client, ctx, ada))
    readme = zf.read("README.txt").decode()
    for doc in FILES:
        assert doc.name in zf.namelist()
        assert f"\n{doc.name}\n" in readme
        for field in doc.fields:
            assert field == "*" or f"  {field}:" in readme
    # Every field actually written is described.
    for doc in FILES:
        value = json.loads(zf.read(doc.name))
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and "*" not in doc.fields:
                assert set(item) <= set(doc.fields), doc.name


async def test_ready_export_sends_an_email_and_a_notice_with_the_download_link(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await rich_account(client, ctx, "ada")
    export_id = await ready_export(client, ctx, ada)
    await dispatch(ctx)
    link = f"/api/v1/users/me/exports/{export_id}/download"
    async with ctx.sessionmaker() as db:
        notices = (
            await db.scalars(select(Notification).where(Notification.user_id == uuid.UUID(ada.id)))
        ).all()
        mails = (
            await db.scalars(select(OutboxMessage).where(OutboxMessage.to_address == ada.email))
        ).all()
    assert [n.link for n in notices if n.title == "Your data export is ready"] == [link]
    (mail,) = [m for m in mails if m.context.get("title") == "Your data export is ready"]
    assert mail.context["link"].endswith(link)


async def test_one_export_at_a_time_per_account(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    assert (await client.post(EXPORTS, headers=auth)).status_code == 202
    r = await client.post(EXPORTS, headers=auth)
    assert r.status_code == 409
    assert r.json()["code"] == "export_in_progress"
    listed = (await client.get(EXPORTS, headers=auth)).json()
    assert [e["status"] for e in listed] == ["pending"]


async def test_a_new_export_may_be_requested_once_the_previous_is_ready(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await rich_account(client, ctx, "ada")
    await ready_export(client, ctx, ada)
    assert (await client.post(EXPORTS, headers=ada.auth)).status_code == 202


async def test_download_before_ready_is_409(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    export_id = (await client.post(EXPORTS, headers=auth)).json()["id"]
    r = await client.get(f"{EXPORTS}/{export_id}/download", headers=auth)
    assert r.status_code == 409
    assert r.json()["code"] == "export_not_ready"


async def test_another_accounts_export_is_404(client: httpx.AsyncClient, ctx: AppContext) -> None:
    ada = await rich_account(client, ctx, "ada")
    export_id = await ready_export(client, ctx, ada)
    mallory = await signed_in(client, "mallory@example.com")
    r = await client.get(f"{EXPORTS}/{export_id}/download", headers=mallory)
    assert r.status_code == 404
    assert r.json()["code"] == "export_not_found"
    assert (await client.get(f"{EXPORTS}/{export_id}/download")).status_code == 401


async def test_download_link_works_for_48_hours_then_is_gone_and_purged(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client, "ada@example.com")
    export_id = (await client.post(EXPORTS, headers=auth)).json()["id"]
    assert await build(ctx) == 1
    url = f"{EXPORTS}/{export_id}/download"
    clock.advance(hours=47, minutes=59)
    tokens = await login(client, "ada@example.com")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get(url, headers=auth)).status_code == 200
    clock.advance(minutes=1)
    r = await client.get(url, headers=auth)
    assert r.status_code == 410
    assert r.json()["code"] == "export_expired"
    async with ctx.sessionmaker() as db:
        row = await db.get(DataExport, uuid.UUID(export_id))
        assert row is not None
        assert row.storage_key is not None
        key = row.storage_key
    assert await ctx.storage.exists(key)
    exports = next(p for p in POLICIES if p.kind == "exports")
    purged = await apply_policy(ctx.sessionmaker, ctx.settings, exports, clock.now(), ctx.storage)
    assert purged.rows == 1
    assert not await ctx.storage.exists(key)
    assert (await client.get(url, headers=auth)).status_code == 404
    assert (await client.get(EXPORTS, headers=auth)).json() == []


async def test_an_api_key_cannot_request_an_export(client: httpx.AsyncClient) -> None:
    r = await client.post(EXPORTS, headers={"Authorization": "Bearer atr_not_a_real_key"})
    assert r.status_code == 401


async def test_admin_export_needs_users_export_and_is_audited(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await rich_account(client, ctx, "ada")
    _, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    url = f"/api/v1/admin/users/{ada.id}/exports"
    r = await client.post(url, headers=moderator)
    assert r.status_code == 403
    admin_id, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    r = await client.post(url, headers=admin)
    assert r.status_code == 202, r.text
    export_id = r.json()["id"]
    assert await build(ctx) == 1
    r = await client.get(f"{url}/{export_id}/download", headers=admin)
    assert r.status_code == 200
    assert json.loads(zipfile.ZipFile(io.BytesIO(r.content)).read("account.json"))["id"] == ada.id
    async with ctx.sessionmaker() as db:
        events = (
            await db.scalars(
                select(AuditEvent).where(
                    AuditEvent.actor_id == uuid.UUID(admin_id),
                    AuditEvent.action.like("user.export_%"),
                )
            )
        ).all()
    assert sorted(e.action for e in events) == ["user.export_downloaded", "user.export_requested"]
    assert all(e.target_id == ada.id for e in events)
    # The account itself sees the export and may download it too.
    assert [e["id"] for e in (await client.get(EXPORTS, headers=ada.auth)).json()] == [export_id]


async def test_admin_export_of_an_unknown_account_is_404(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    r = await client.post(f"/api/v1/admin/users/{uuid.uuid4()}/exports", headers=admin)
    assert r.status_code == 404
    assert r.json()["code"] == "user_not_found"
