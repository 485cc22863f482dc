"""``auth.enumeration_safe_registration``: the same 202 for a new and an existing email,
and the existing account's owner is told (OWASP ASVS 5.0 6.3.8)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from atrium.config import Settings
from atrium.context import AppContext
from atrium.models import User
from tests.factories import PASSWORD, login
from tests.mailbox import outbox, queued_token

URL = "/api/v1/auth/register"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    auth = settings.auth.model_copy(update={"enumeration_safe_registration": True})
    return settings.model_copy(update={"auth": auth})


async def _users(ctx: AppContext) -> int:
    async with ctx.sessionmaker() as db:
        return int((await db.execute(select(func.count()).select_from(User))).scalar_one())


async def test_new_and_existing_email_get_the_same_answer(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    new = await client.post(URL, json={"email": "ada@example.com", "password": PASSWORD})
    existing = await client.post(
        URL, json={"email": "ADA@example.com", "password": "another good passphrase"}
    )

    assert new.status_code == existing.status_code == 202
    assert new.json() == existing.json()
    assert new.headers["content-type"] == existing.headers["content-type"]
    assert await _users(ctx) == 1


async def test_new_account_gets_a_verification_email_and_works(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await client.post(URL, json={"email": "ada@example.com", "password": PASSWORD})

    token = await queued_token(ctx, "verify_email", "ada@example.com")
    assert (
        await client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 204
    await login(client, "ada@example.com")


async def test_owner_of_existing_account_is_told(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await client.post(URL, json={"email": "ada@example.com", "password": PASSWORD})

    await client.post(URL, json={"email": "ada@example.com", "password": "another passphrase"})

    [notice] = await outbox(ctx, "registration_attempt")
    assert notice.to_address == "ada@example.com"
    assert len(await outbox(ctx, "verify_email")) == 1
    await login(client, "ada@example.com")  # the original password still works


async def test_invalid_input_is_still_422(client: httpx.AsyncClient) -> None:
    weak = await client.post(URL, json={"email": "ada@example.com", "password": "password"})
    invalid = await client.post(URL, json={"email": "nope", "password": PASSWORD})

    assert weak.status_code == invalid.status_code == 422
