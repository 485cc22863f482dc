"""Recovery codes: single use (also under concurrency), notices, regeneration; and wrong
codes counted by the login throttle."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from atrium.config import RateLimitSettings, Settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.mfa import recovery
from atrium.mfa.repository import MfaRepository
from tests.mfa.helpers import (
    MFA,
    UA,
    VERIFY,
    bearer,
    events,
    mails,
    mfa_account,
    mfa_token,
    password_step,
    totp_code,
)


async def test_a_recovery_code_signs_in_once_and_emails_the_owner(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    code = account.recovery_codes[0]

    first = await client.post(
        VERIFY,
        json={"mfa_token": await mfa_token(client, account.email), "recovery_code": code.lower()},
        headers=UA,
    )
    again = await client.post(
        VERIFY,
        json={"mfa_token": await mfa_token(client, account.email), "recovery_code": code},
        headers=UA,
    )

    assert first.status_code == 200, first.text
    assert (first.json()["acr"], first.json()["amr"]) == ("aal2", ["pwd", "otp", "mfa"])
    assert (again.status_code, again.json()["code"]) == (401, "invalid_otp")
    [notice] = await mails(ctx, "mfa_recovery_code_used")
    assert notice.context == {"remaining": 9}
    [used] = await events(ctx, "mfa.recovery_code_used")
    assert used.details == {"remaining": 9}
    status = (await client.get(MFA, headers=bearer(first.json()))).json()
    assert status["recovery_codes_remaining"] == 9


async def test_twenty_parallel_uses_of_one_code_succeed_once(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    tokens = [await mfa_token(client, account.email) for _ in range(20)]

    answers = await asyncio.gather(
        *(
            client.post(
                VERIFY,
                json={"mfa_token": t, "recovery_code": account.recovery_codes[0]},
                headers=UA,
            )
            for t in tokens
        )
    )

    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(200) == 1
    # The others lose at the account's guard (429) or find the code spent (401).
    assert set(statuses) <= {200, 401, 429}
    assert len(await mails(ctx, "mfa_recovery_code_used")) == 1


async def test_a_code_spent_by_twenty_concurrent_transactions_is_spent_once(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    """The single-use rule itself (a conditional UPDATE), without the login throttle's
    guard in front of it: twenty transactions on their own connections."""
    account = await mfa_account(client, ctx, clock)
    digest = recovery.code_hash(account.recovery_codes[1])
    start = asyncio.Event()

    async def spend() -> bool:
        async with ctx.sessionmaker() as db:
            await start.wait()
            spent = await MfaRepository(db).use_recovery_code(
                uuid.UUID(account.id), digest, clock.now()
            )
            await db.commit()
            return spent

    tasks = [asyncio.create_task(spend()) for _ in range(20)]
    await asyncio.sleep(0)
    start.set()
    results = await asyncio.gather(*tasks)

    assert results.count(True) == 1


async def test_regenerated_codes_replace_the_previous_set(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)

    response = await client.post(f"{MFA}/recovery-codes", headers=bearer(account.tokens))

    assert response.status_code == 200
    new = response.json()["recovery_codes"]
    assert len(new) == 10
    assert not set(new) & set(account.recovery_codes)
    old = await client.post(
        VERIFY,
        json={
            "mfa_token": await mfa_token(client, account.email),
            "recovery_code": account.recovery_codes[0],
        },
        headers=UA,
    )
    assert old.status_code == 401
    assert len(await mails(ctx, "mfa_recovery_codes_generated")) == 1


async def test_recovery_codes_need_mfa(client: httpx.AsyncClient, ctx: AppContext) -> None:
    from tests.factories import login, register
    from tests.mfa.helpers import verify_email

    user = await register(client, "bob@example.com")
    await verify_email(ctx, user["id"])
    tokens = await login(client, "bob@example.com")

    response = await client.post(f"{MFA}/recovery-codes", headers=bearer(tokens))

    assert (response.status_code, response.json()["code"]) == (409, "mfa_not_enabled")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Three failures per account before the growing delay (as in production, lower)."""
    limits = RateLimitSettings(
        registration="100000/minute",
        login="100000/minute",
        refresh="100000/minute",
        login_failures_per_account=3,
        login_failures_per_ip=100000,
    )
    return settings.model_copy(update={"rate_limit": limits})


async def test_wrong_codes_count_in_the_accounts_login_throttle(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    token = await mfa_token(client, account.email)
    wrong = totp_code(account.secret, clock, steps=5)

    answers = [
        await client.post(VERIFY, json={"mfa_token": token, "code": wrong}, headers=UA)
        for _ in range(4)
    ]
    # Entering the password again does not clear the failures of the second factor.
    password_again = await password_step(client, account.email)

    assert [a.status_code for a in answers] == [401, 401, 401, 429]
    assert answers[3].json()["code"] == "login_throttled"
    assert int(answers[3].headers["retry-after"]) >= 1
    assert password_again.status_code == 429
    assert len(await events(ctx, "auth.mfa_failed")) == 3
    assert len(await events(ctx, "auth.login_throttled")) == 1
    clock.advance(seconds=5)
    right = await client.post(
        VERIFY, json={"mfa_token": token, "code": totp_code(account.secret, clock)}, headers=UA
    )
    assert right.status_code == 200, right.text
