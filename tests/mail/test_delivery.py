"""The delivery worker against a real SMTP server: content, links, retries, leases, and
exactly-once delivery with concurrent workers."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta

import httpx
import pytest

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.mail.repository import OutboxRepository
from atrium.mail.service import Outbox
from atrium.mail.transport import SmtpTransport
from atrium.mail.worker import MailWorker, backoff_seconds
from atrium.models import OutboxStatus
from tests.conftest import Database
from tests.dispatch import dispatch
from tests.factories import PASSWORD, login, register
from tests.mailbox import SmtpSink, free_port, outbox, smtp_settings, smtp_worker

# --- content and links ---------------------------------------------------------------------


async def test_registration_email_arrives_with_both_parts_and_a_working_link(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await client.get("/api/v1/users/me", headers=auth)).json()["email_verified"] is False

    assert await smtp_worker(ctx, smtp_server.port).drain() == 1

    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["ada@example.com"]
    assert mail.message["To"] == "ada@example.com"
    assert mail.message["From"] == "Atrium <no-reply@atrium.test>"
    assert mail.message["Subject"] == "Confirm your email address for Atrium"
    assert mail.link.startswith("http://127.0.0.1:8000/verify-email?token=")
    assert "Welcome to Atrium!" in mail.text
    assert mail.link in mail.text
    assert f'href="{mail.link}"' in mail.html
    assert "<html" in mail.html
    response = await client.post("/api/v1/auth/verify-email", json={"token": mail.token})
    assert response.status_code == 204
    me = await client.get("/api/v1/users/me", headers=auth)
    assert me.json()["email_verified"] is True


async def test_message_id_is_the_outbox_row_id(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    await register(client, "ada@example.com")
    [row] = await outbox(ctx)

    await smtp_worker(ctx, smtp_server.port).drain()

    assert smtp_server.received[0].message["Message-ID"] == f"<{row.id}@atrium.test>"


async def test_sent_message_is_recorded_and_its_link_erased(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")

    await smtp_worker(ctx, smtp_server.port).drain()

    [row] = await outbox(ctx)
    assert row.status == OutboxStatus.sent
    assert row.sent_at == clock.now()
    assert row.attempts == 1
    assert row.context == {}


async def test_spanish_account_gets_spanish_email(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "ana@example.com", "password": PASSWORD, "locale": "es-MX"},
    )
    assert response.status_code == 201
    assert response.json()["locale"] == "es_MX"

    await smtp_worker(ctx, smtp_server.port).drain()

    [mail] = smtp_server.received
    assert mail.message["Subject"] == "Confirma tu dirección de correo en Atrium"
    assert mail.message["Content-Language"] == "es"
    assert "¡Te damos la bienvenida a Atrium!" in mail.text
    assert "Confirmar mi dirección de correo" in mail.html


async def test_locale_without_catalog_falls_back_to_english(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "jean@example.com", "password": PASSWORD, "locale": "fr"},
    )
    assert response.status_code == 201

    await smtp_worker(ctx, smtp_server.port).drain()

    assert smtp_server.received[0].message["Subject"] == "Confirm your email address for Atrium"


async def test_unknown_locale_is_422(client: httpx.AsyncClient, ctx: AppContext) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "x@example.com", "password": PASSWORD, "locale": "not a locale"},
    )

    assert response.status_code == 422
    assert await outbox(ctx) == []


async def test_product_name_and_link_base_come_from_settings(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    await register(client, "ada@example.com")
    settings = ctx.settings.model_copy(update={"product_name": "Acme ID"})
    settings = smtp_settings(settings, smtp_server.port)
    worker = MailWorker(ctx.sessionmaker, settings, ctx.clock, SmtpTransport(settings))

    await worker.drain()

    [mail] = smtp_server.received
    assert mail.message["Subject"] == "Confirm your email address for Acme ID"
    assert "Acme ID" in mail.html
    assert mail.link.startswith(ctx.settings.mail.link_base_url)


# --- failures and retries ------------------------------------------------------------------


async def test_smtp_down_keeps_messages_pending_then_delivers_each_once(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink, clock: FrozenClock
) -> None:
    for name in ("a", "b", "c"):
        await register(client, f"{name}@example.com")
    down = smtp_worker(ctx, free_port())

    assert await down.drain() == 3

    rows = await outbox(ctx)
    assert {r.status for r in rows} == {OutboxStatus.pending}
    assert {r.attempts for r in rows} == {1}
    assert {r.next_attempt_at for r in rows} == {clock.now() + timedelta(seconds=30)}
    assert all(r.last_error for r in rows)
    assert await down.drain() == 0  # not due yet
    clock.advance(seconds=30)
    up = smtp_worker(ctx, smtp_server.port)

    assert await up.drain() == 3
    assert await up.drain() == 0

    assert sorted(r for m in smtp_server.received for r in m.rcpt_tos) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
    ]
    assert {r.status for r in await outbox(ctx)} == {OutboxStatus.sent}


async def test_retries_back_off_exponentially(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    down = smtp_worker(ctx, free_port())
    delays = []
    for _ in range(4):
        await down.drain()
        [row] = await outbox(ctx)
        delays.append((row.next_attempt_at - clock.now()).total_seconds())
        clock.advance(seconds=delays[-1])

    assert delays == [30, 60, 120, 240]


def test_backoff_is_capped() -> None:
    assert backoff_seconds(1, base=30, maximum=3600) == 30
    assert backoff_seconds(3, base=30, maximum=3600) == 120
    assert backoff_seconds(20, base=30, maximum=3600) == 3600


async def test_message_fails_after_max_attempts_and_retry_failed_requeues_it(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    down = smtp_worker(ctx, free_port(), max_attempts=3)
    for _ in range(5):
        await down.drain()
        clock.advance(hours=2)

    [row] = await outbox(ctx)
    assert row.status == OutboxStatus.failed
    assert row.attempts == 3
    async with unit_of_work(ctx.sessionmaker) as db:
        assert await OutboxRepository(db).counts_by_status() == {
            "pending": 0,
            "sending": 0,
            "sent": 0,
            "failed": 1,
        }
        assert await OutboxRepository(db).retry_failed(clock.now()) == 1

    assert await smtp_worker(ctx, smtp_server.port, max_attempts=3).drain() == 1
    assert len(smtp_server.received) == 1
    assert (await outbox(ctx))[0].status == OutboxStatus.sent


async def test_refused_recipient_fails_at_once(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    await register(client, "ada@example.com")

    async def refuse(server: object, session: object, envelope: object, address: str, *_: object):  # type: ignore[no-untyped-def]
        return "550 5.1.1 No such mailbox"

    smtp_server.handle_RCPT = refuse  # type: ignore[attr-defined]

    await smtp_worker(ctx, smtp_server.port).drain()

    [row] = await outbox(ctx)
    assert row.status == OutboxStatus.failed
    assert row.attempts == 1
    assert row.last_error is not None
    assert "550" in row.last_error


async def test_claim_of_a_crashed_worker_is_retried_after_its_lease(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    lease = timedelta(seconds=ctx.settings.mail.lease_seconds)
    async with unit_of_work(ctx.sessionmaker) as db:  # a worker claims, then dies
        claimed = await OutboxRepository(db).claim(
            clock.now(), limit=10, lease_id=uuid.uuid4(), locked_until=clock.now() + lease
        )
    assert len(claimed) == 1
    worker = smtp_worker(ctx, smtp_server.port)

    assert await worker.drain() == 0
    clock.advance(seconds=lease.total_seconds() - 1)
    assert await worker.drain() == 0
    clock.advance(seconds=1)
    assert await worker.drain() == 1

    [mail] = smtp_server.received
    assert mail.message["Message-ID"] == f"<{claimed[0].id}@atrium.test>"
    [row] = await outbox(ctx)
    assert row.status == OutboxStatus.sent
    assert row.attempts == 2


async def test_crash_during_the_last_attempt_marks_the_message_failed(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    lease = timedelta(seconds=ctx.settings.mail.lease_seconds)
    async with unit_of_work(ctx.sessionmaker) as db:
        await OutboxRepository(db).claim(
            clock.now(), limit=10, lease_id=uuid.uuid4(), locked_until=clock.now() + lease
        )
    clock.advance(seconds=lease.total_seconds())

    assert await smtp_worker(ctx, smtp_server.port, max_attempts=1).drain() == 0

    assert (await outbox(ctx))[0].status == OutboxStatus.failed
    assert smtp_server.received == []


# --- transactions --------------------------------------------------------------------------


async def test_rolled_back_transaction_leaves_no_message(
    ctx: AppContext, smtp_server: SmtpSink
) -> None:
    class Boom(Exception):
        pass

    async def change_that_fails() -> None:
        async with unit_of_work(ctx.sessionmaker) as db:
            await Outbox(db, ctx.clock).enqueue(
                "password_changed", to="ada@example.com", locale=None, context={}
            )
            raise Boom

    with pytest.raises(Boom):
        await change_that_fails()

    assert await outbox(ctx) == []
    assert await smtp_worker(ctx, smtp_server.port).drain() == 0
    assert smtp_server.received == []


async def test_failed_registration_queues_no_message(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    await register(client, "ada@example.com")
    duplicate = await client.post(
        "/api/v1/auth/register", json={"email": "ADA@example.com", "password": PASSWORD}
    )
    assert duplicate.status_code == 409

    await smtp_worker(ctx, smtp_server.port).drain()

    assert len(smtp_server.received) == 1


async def test_unknown_template_is_refused(ctx: AppContext) -> None:
    async with ctx.sessionmaker() as db:
        with pytest.raises(ValueError, match="unknown mail template"):
            await Outbox(db, ctx.clock).enqueue("nope", to="a@example.com", locale=None, context={})


# --- concurrency ---------------------------------------------------------------------------


async def test_two_workers_deliver_200_messages_exactly_once(
    ctx: AppContext, smtp_server: SmtpSink, database: Database
) -> None:
    """On PostgreSQL this exercises FOR UPDATE SKIP LOCKED; on SQLite the claim
    transactions are serialised by BEGIN IMMEDIATE."""
    async with unit_of_work(ctx.sessionmaker) as db:
        box = Outbox(db, ctx.clock)
        for i in range(200):
            await box.enqueue(
                "password_changed", to=f"user{i}@example.com", locale=None, context={}
            )
    settings = smtp_settings(ctx.settings, smtp_server.port, batch_size=10)
    engines = [create_engine(settings) for _ in range(2)]
    try:
        workers = [
            MailWorker(create_sessionmaker(e), settings, ctx.clock, SmtpTransport(settings))
            for e in engines
        ]
        counts = await asyncio.gather(*(w.drain() for w in workers))
    finally:
        for e in engines:
            await e.dispose()

    assert sum(counts) == 200
    ids = Counter(str(m.message["Message-ID"]) for m in smtp_server.received)
    assert len(ids) == 200
    assert set(ids.values()) == {1}
    rows = await outbox(ctx)
    assert {r.status for r in rows} == {OutboxStatus.sent}
    assert {r.attempts for r in rows} == {1}
    if database.backend == "postgresql":
        assert all(n > 0 for n in counts), counts  # both workers took part


async def test_stopped_worker_returns_after_its_batch(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    await register(client, "ada@example.com")
    worker = smtp_worker(ctx, smtp_server.port, poll_interval_seconds=60)
    task = asyncio.create_task(worker.run())
    for _ in range(200):  # bounded wait for the background delivery
        if smtp_server.received:
            break
        await asyncio.sleep(0.02)

    worker.stop()

    await asyncio.wait_for(task, timeout=5)  # not the 60 s poll interval
    assert len(smtp_server.received) == 1


async def test_locale_set_later_applies_to_the_next_emails(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    patched = await client.patch("/api/v1/users/me", json={"locale": "es"}, headers=auth)
    assert patched.status_code == 200
    assert patched.json()["locale"] == "es"

    await client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": "otra contraseña muy larga"},
        headers=auth,
    )
    await dispatch(ctx)  # the notice follows from the password.changed event
    await smtp_worker(ctx, smtp_server.port).drain()

    subjects = {str(m.message["Subject"]) for m in smtp_server.received}
    assert subjects == {
        "Confirm your email address for Atrium",  # queued before the change
        "La contraseña de tu cuenta de Atrium ha cambiado",
    }
