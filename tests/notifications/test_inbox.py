"""The inbox: notices from events, preferences per category and channel, the endpoints."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.db import unit_of_work
from atrium.events.dispatcher import EventEnvelope
from atrium.models import Event, Notification
from atrium.notifications.consumer import notification_consumer
from tests.dispatch import dispatch
from tests.factories import PASSWORD, signed_in, signed_in_as
from tests.mailbox import outbox

INBOX = "/api/v1/users/me/notifications"
NEW_PASSWORD = "a brand new passphrase"


async def change_password(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    response = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=auth,
    )
    assert response.status_code == 204, response.text


async def set_channels(
    client: httpx.AsyncClient, auth: dict[str, str], category: str, **channels: bool
) -> None:
    response = await client.patch(
        "/api/v1/users/me/preferences",
        json={"notifications": {category: channels}},
        headers=auth,
    )
    assert response.status_code == 200, response.text


async def test_password_change_notice_reaches_inbox_and_email(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await change_password(client, auth)
    assert (await client.get(INBOX, headers=auth)).json()["items"] == []  # not yet dispatched

    await dispatch(ctx)

    page = (await client.get(INBOX, headers=auth)).json()
    [notice] = page["items"]
    assert notice["category"] == "security"
    assert notice["title"] == "Your password was changed"
    assert notice["read"] is False
    assert page["next_cursor"] is None
    assert (await client.get(f"{INBOX}/unread-count", headers=auth)).json() == {"count": 1}
    [mail] = await outbox(ctx, "password_changed")
    assert mail.to_address == "ada@example.com"


async def test_security_notices_reach_email_even_when_email_is_turned_off(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await set_channels(client, auth, "security", email=False, in_app=False)
    await change_password(client, auth)
    await dispatch(ctx)

    assert len(await outbox(ctx, "password_changed")) == 1
    assert (await client.get(INBOX, headers=auth)).json()["items"] == []


async def test_account_notices_follow_the_in_app_preference(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "admin")
    ada = await signed_in(client, "ada@example.com")
    ada_id = (await client.get("/api/v1/users/me", headers=ada)).json()["id"]
    role = f"/api/v1/admin/users/{ada_id}/roles/moderator"
    assert (await client.put(role, headers=admin)).status_code == 200
    await dispatch(ctx)
    [notice] = (await client.get(INBOX, headers=ada)).json()["items"]
    assert notice["category"] == "account"
    assert notice["body"] == "Your account now holds the role “moderator”."

    await set_channels(client, ada, "account", in_app=False)
    clock.advance(seconds=1)
    assert (await client.delete(role, headers=admin)).status_code == 200
    await dispatch(ctx)

    assert (await client.get(INBOX, headers=ada)).json()["items"] == []  # hidden
    assert (await client.get(f"{INBOX}/unread-count", headers=ada)).json() == {"count": 0}
    async with ctx.sessionmaker() as db:  # and the revocation wrote none
        assert len((await db.execute(select(Notification))).all()) == 1
    await set_channels(client, ada, "account", in_app=True)
    assert len((await client.get(INBOX, headers=ada)).json()["items"]) == 1


async def test_read_read_all_and_delete(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await signed_in(client)
    other = await signed_in(client, "bob@example.com")
    await change_password(client, auth)
    await dispatch(ctx)
    [notice] = (await client.get(INBOX, headers=auth)).json()["items"]

    assert (await client.post(f"{INBOX}/{notice['id']}/read", headers=other)).status_code == 404
    first = await client.post(f"{INBOX}/{notice['id']}/read", headers=auth)
    assert first.status_code == 200
    assert first.json()["read"] is True
    again = await client.post(f"{INBOX}/{notice['id']}/read", headers=auth)
    assert again.json()["read_at"] == first.json()["read_at"]
    assert (await client.get(f"{INBOX}/unread-count", headers=auth)).json() == {"count": 0}
    assert (await client.get(INBOX, headers=auth, params={"unread": "true"})).json()["items"] == []

    assert (await client.delete(f"{INBOX}/{notice['id']}", headers=other)).status_code == 404
    assert (await client.delete(f"{INBOX}/{notice['id']}", headers=auth)).status_code == 204
    missing = await client.delete(f"{INBOX}/{notice['id']}", headers=auth)
    assert missing.status_code == 404
    assert missing.json()["code"] == "notification_not_found"


async def test_read_all_marks_every_unread_notice(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    await change_password(client, auth)
    await dispatch(ctx)
    clock.advance(seconds=1)
    response = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": NEW_PASSWORD, "new_password": PASSWORD},
        headers=auth,
    )
    assert response.status_code == 204
    await dispatch(ctx)
    assert (await client.get(f"{INBOX}/unread-count", headers=auth)).json() == {"count": 2}

    marked = await client.post(f"{INBOX}/read-all", headers=auth)

    assert marked.json() == {"updated": 2}
    assert (await client.get(f"{INBOX}/unread-count", headers=auth)).json() == {"count": 0}
    page = (await client.get(INBOX, headers=auth, params={"limit": 1})).json()
    assert len(page["items"]) == 1
    assert page["next_cursor"]


async def test_a_redelivered_event_makes_one_notice(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await change_password(client, auth)
    async with ctx.sessionmaker() as db:
        event = (
            await db.execute(select(Event).where(Event.type == "password.changed"))
        ).scalar_one()
    envelope = EventEnvelope.from_row(event)
    consumer = notification_consumer(ctx.settings, ctx.clock, ctx.bus)
    for _ in range(2):  # at least once: the same event twice
        async with unit_of_work(ctx.sessionmaker) as db:
            await consumer.handle(envelope, db)

    assert (await client.get(f"{INBOX}/unread-count", headers=auth)).json() == {"count": 1}


async def test_email_change_notice_goes_to_both_addresses(ctx: AppContext) -> None:
    from atrium.events.service import emit
    from tests.factories import insert_user

    uid = await insert_user(ctx, email="new@example.com")
    async with unit_of_work(ctx.sessionmaker) as db:
        await emit(
            db,
            "user.email_changed",
            subject=uid,
            actor=uid,
            data={"email": "new@example.com", "previous_email": "old@example.com"},
        )
    await dispatch(ctx)

    mails = await outbox(ctx, "notification")
    assert sorted(m.to_address for m in mails) == ["new@example.com", "old@example.com"]
    assert mails[0].context["title"] == "Your email address was changed"
    assert mails[0].context["link"].endswith("/account")
    async with ctx.sessionmaker() as db:
        [row] = (await db.execute(select(Notification))).scalars().all()
    assert row.user_id == uid
    assert uuid.UUID(str(row.source_id))


async def test_api_key_notices_reach_the_inbox_with_one_email_each(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    created = await client.post("/api/v1/users/me/api-keys", headers=auth, json={"name": "ci"})
    assert created.status_code == 201, created.text
    clock.advance(seconds=1)
    key_id = created.json()["id"]
    revoked = await client.delete(f"/api/v1/users/me/api-keys/{key_id}", headers=auth)
    assert revoked.status_code == 204, revoked.text
    await dispatch(ctx)

    titles = sorted(n["title"] for n in (await client.get(INBOX, headers=auth)).json()["items"])
    assert titles == ["An API key was created", "An API key was revoked"]
    # Creation: the API-key flow's own email only; revocation: the notice's.
    assert len(await outbox(ctx, "api_key_created")) == 1
    [revocation] = await outbox(ctx, "notification")
    assert revocation.context["title"] == "An API key was revoked"
