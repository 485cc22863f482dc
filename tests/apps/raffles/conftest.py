"""Fixtures of the raffles application's tests: the platform's fixtures with the
application listed and its Alembic branch migrated, on SQLite and (with
``ATRIUM_TEST_DATABASE_URL``) PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from atrium import migrate
from atrium.apps.raffles.models import RafflesBase
from atrium.audit.service import ACTIONS
from atrium.config import Settings
from atrium.context import AppContext
from atrium.events.catalogue import CATALOGUE
from atrium.mail.render import TEMPLATES
from atrium.notifications.notices import NOTICES
from atrium.rbac.permissions import PERMISSIONS
from tests.apps.raffles.fake_stripe import API_KEY, WEBHOOK_SECRET, FakeStripe, fake_stripe
from tests.apps.raffles.fakes import FakeDrand, fake_drand
from tests.conftest import BACKENDS, Database

APPS = ["raffles"]


@pytest.fixture(autouse=True)
def catalogues() -> Iterator[None]:
    """The permission and audit catalogues as they were: registering the application is
    per process, and the other tests expect the platform's alone."""
    permissions, actions, mails = dict(PERMISSIONS), dict(ACTIONS), dict(TEMPLATES)
    events, notices = dict(CATALOGUE), dict(NOTICES)
    yield
    CATALOGUE.clear()
    CATALOGUE.update(events)
    NOTICES.clear()
    NOTICES.update(notices)
    PERMISSIONS.clear()
    PERMISSIONS.update(permissions)
    ACTIONS.clear()
    ACTIONS.update(actions)
    TEMPLATES.clear()
    TEMPLATES.update(mails)


@pytest.fixture(scope="session")
def raffles_sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("raffles-template") / "atrium.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}", apps=APPS)
    return path


@pytest.fixture(scope="session")
def raffles_pg_database(pg_database: str) -> str:
    migrate.upgrade(pg_database, apps=APPS)
    return pg_database


async def _truncate_app_tables(url: str) -> None:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(t.name for t in RafflesBase.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The platform's ``database`` with the raffles branch migrated (and emptied)."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("raffles_sqlite_template")
        path = tmp_path / "atrium.db"
        shutil.copy(template, path)
        return Database("sqlite", f"sqlite+aiosqlite:///{path}")
    url: str = request.getfixturevalue("raffles_pg_database")
    asyncio.run(_truncate_app_tables(url))
    return Database("postgresql", url)


@pytest.fixture
def drand(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDrand]:
    """A fake drand beacon on loopback, the one the application's settings name."""
    with fake_drand() as fake:
        monkeypatch.setenv("ATRIUM_RAFFLES__BEACON_URL", fake.url)
        yield fake


@pytest.fixture
def stripe_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStripe]:
    """The fake Stripe API on loopback, with the application's Stripe settings naming it."""
    with fake_stripe() as fake:
        monkeypatch.setenv("ATRIUM_RAFFLES__STRIPE_SECRET_KEY", API_KEY)
        monkeypatch.setenv("ATRIUM_RAFFLES__STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        monkeypatch.setenv("ATRIUM_RAFFLES__STRIPE_API_BASE", fake.url)
        yield fake


@pytest.fixture
def settings(settings: Settings, drand: FakeDrand, stripe_api: FakeStripe) -> Settings:
    settings.apps = APPS
    return settings


async def run_jobs(app: Any) -> None:
    """One pass of every scheduled job of the running applications."""
    from atrium.main import job_runner

    ctx: AppContext = app.state.ctx
    runner = job_runner(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, ctx.apps)
    assert runner is not None
    await runner.run_once(force=True)


async def issue_tickets(ctx: AppContext, raffle_id: str, owner_id: str, count: int) -> None:
    """Tickets sold directly in the database: one paid purchase of ``count`` tickets."""
    from sqlalchemy import update

    from atrium.apps.raffles.models import Purchase, Raffle, Ticket

    now = ctx.clock.now()
    rid, owner = uuid.UUID(raffle_id), uuid.UUID(owner_id)
    async with ctx.sessionmaker() as db:
        raffle = await db.get(Raffle, rid)
        assert raffle is not None
        purchase = Purchase(
            id=uuid.uuid4(),
            raffle_id=rid,
            user_id=owner,
            quantity=count,
            amount=count * raffle.ticket_price,
            currency=raffle.currency,
            status="paid",
            holds_reservation=False,
            amount_refunded=0,
            reserved_until=now,
            created_at=now,
            paid_at=now,
        )
        db.add(purchase)
        await db.flush()
        first = raffle.tickets_sold + 1
        for number in range(first, first + count):
            db.add(
                Ticket(
                    id=uuid.uuid4(),
                    raffle_id=rid,
                    number=number,
                    purchase_id=purchase.id,
                    owner_id=owner,
                    issued_at=now,
                )
            )
        await db.execute(
            update(Raffle).where(Raffle.id == rid).values(tickets_sold=Raffle.tickets_sold + count)
        )
        await db.commit()


def raffle_body(ctx: AppContext, **overrides: Any) -> dict[str, Any]:
    """A valid creation body: opens now, closes in a day."""
    now = ctx.clock.now()
    body: dict[str, Any] = {
        "title": "Watch of the week",
        "description": "A Swiss automatic watch.",
        "prize_description": "One watch.",
        "terms": "Adults only.",
        "currency": "eur",
        "ticket_price": 500,
        "total_tickets": 100,
        "max_per_account": 10,
        "prizes": 1,
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(days=1)).isoformat(),
    }
    body.update(overrides)
    return body


async def create_raffle(
    client: httpx.AsyncClient,
    ctx: AppContext,
    headers: dict[str, str],
    *,
    publish: bool = True,
    **overrides: Any,
) -> dict[str, Any]:
    """Create (and by default publish) a raffle through the admin API; its admin view."""
    created = await client.post(
        "/api/v1/admin/raffles", json=raffle_body(ctx, **overrides), headers=headers
    )
    assert created.status_code == 201, created.text
    raffle: dict[str, Any] = created.json()
    if publish:
        published = await client.post(
            f"/api/v1/admin/raffles/{raffle['id']}/publish", headers=headers
        )
        assert published.status_code == 200, published.text
        raffle = published.json()
    return raffle


async def verified_buyer(
    client: httpx.AsyncClient, ctx: AppContext, email: str
) -> tuple[str, dict[str, str]]:
    """Register ``email``, mark its address verified, log in; its id and header."""
    from sqlalchemy import update

    from atrium.models import User
    from tests.factories import login, register

    user = await register(client, email)
    async with ctx.sessionmaker() as db:
        await db.execute(
            update(User)
            .where(User.id == uuid.UUID(user["id"]))
            .values(email_verified_at=ctx.clock.now())
        )
        await db.commit()
    await ctx.principals.forget_users([uuid.UUID(user["id"])])
    tokens = await login(client, email)
    return user["id"], {"Authorization": f"Bearer {tokens['access_token']}"}


async def buy(
    client: httpx.AsyncClient,
    raffle_id: str,
    headers: dict[str, str],
    quantity: int,
    key: str | None = None,
) -> httpx.Response:
    """POST a purchase with an Idempotency-Key (a fresh one unless given)."""
    return await client.post(
        f"/api/v1/raffles/{raffle_id}/purchases",
        json={"quantity": quantity},
        headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex},
    )
