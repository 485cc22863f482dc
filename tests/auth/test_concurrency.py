"""Races on the unique email index and on single-use refresh tokens, on every backend."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
from sqlalchemy import func, select

from atrium.context import AppContext
from atrium.models import AuthSession, User
from tests.factories import PASSWORD, login, register


async def test_concurrent_registrations_of_one_email_create_exactly_one_account(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    async def attempt() -> httpx.Response:
        return await client.post(
            "/api/v1/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )

    responses = await asyncio.gather(*(attempt() for _ in range(50)))

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 49}, [r.text for r in responses if r.status_code >= 500]
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"email_taken"}
    async with ctx.sessionmaker() as db:
        rows = (
            await db.execute(
                select(func.count())
                .select_from(User)
                .where(User.email_normalized == "ada@example.com")
            )
        ).scalar_one()
    assert rows == 1


async def test_concurrent_registrations_in_different_cases_create_one_account(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    emails = ["ada@example.com", "ADA@example.com", "Ada@Example.COM", "ada@EXAMPLE.com"] * 5

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/register", json={"email": e, "password": PASSWORD})
            for e in emails
        )
    )

    assert Counter(r.status_code for r in responses) == {201: 1, 409: len(emails) - 1}
    async with ctx.sessionmaker() as db:
        assert (await db.execute(select(func.count()).select_from(User))).scalar_one() == 1


async def test_concurrent_refreshes_of_one_token_succeed_at_most_once(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            for _ in range(20)
        )
    )

    statuses = Counter(r.status_code for r in responses)
    assert statuses[200] <= 1
    assert statuses[401] == 20 - statuses[200], [r.text for r in responses]
    assert {r.json()["code"] for r in responses if r.status_code == 401} == {"refresh_token_reused"}


async def test_concurrent_refreshes_of_one_token_revoke_the_session(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            for _ in range(20)
        )
    )

    assert all(r.status_code in (200, 401) for r in responses)
    async with ctx.sessionmaker() as db:
        session = (await db.execute(select(AuthSession))).scalar_one()
    assert session.revoked_at is not None
    assert session.revoked_reason == "refresh_token_reused"


async def test_concurrent_refreshes_leave_no_usable_refresh_token(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    responses = await asyncio.gather(
        *(
            client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            for _ in range(20)
        )
    )

    winners = [r.json() for r in responses if r.status_code == 200]
    for pair in winners:
        again = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
        )
        assert again.status_code == 401
        assert again.json()["code"] == "invalid_refresh_token"
