"""Password forgot/reset: no enumeration, single-use 15-minute tokens, newest wins, policy,
every session revoked, notice queued."""

from __future__ import annotations

import httpx
import pytest

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.dispatch import dispatch
from tests.factories import PASSWORD, login, register
from tests.mailbox import outbox, queued_token

FORGOT = "/api/v1/auth/password/forgot"
RESET = "/api/v1/auth/password/reset"
NEW_PASSWORD = "a brand new battery staple"


async def _forgot(client: httpx.AsyncClient, email: str) -> httpx.Response:
    return await client.post(FORGOT, json={"email": email})


async def _reset(
    client: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD
) -> httpx.Response:
    return await client.post(RESET, json={"token": token, "new_password": password})


async def _reset_token(client: httpx.AsyncClient, ctx: AppContext, email: str) -> str:
    assert (await _forgot(client, email)).status_code == 202
    return await queued_token(ctx, "reset_password", email)


# --- forgot --------------------------------------------------------------------------------


async def test_forgot_queues_a_reset_link_valid_15_minutes(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")

    response = await _forgot(client, "ADA@example.com")

    assert response.status_code == 202
    [row] = await outbox(ctx, "reset_password")
    assert row.to_address == "ada@example.com"
    assert row.context["minutes"] == 15
    assert "/reset-password?token=" in row.context["link"]


@pytest.mark.parametrize(
    "email", ["nobody@example.com", "not an email", ""], ids=["unknown", "invalid", "empty"]
)
async def test_forgot_answers_the_same_for_an_unknown_email(
    client: httpx.AsyncClient, ctx: AppContext, email: str
) -> None:
    await register(client, "ada@example.com")
    known = await _forgot(client, "ada@example.com")

    unknown = await _forgot(client, email)

    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    assert unknown.headers["content-type"] == known.headers["content-type"]
    assert len(await outbox(ctx, "reset_password")) == 1


async def test_forgot_for_a_suspended_account_sends_nothing(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    from sqlalchemy import update

    from atrium.models import User

    await register(client, "ada@example.com")
    async with ctx.sessionmaker() as db, db.begin():
        await db.execute(update(User).values(status="suspended"))

    assert (await _forgot(client, "ada@example.com")).status_code == 202
    assert await outbox(ctx, "reset_password") == []


# --- reset ---------------------------------------------------------------------------------


async def test_reset_sets_the_new_password(client: httpx.AsyncClient, ctx: AppContext) -> None:
    await register(client, "ada@example.com")
    token = await _reset_token(client, ctx, "ada@example.com")

    response = await _reset(client, token)

    assert response.status_code == 204
    old = await client.post(
        "/api/v1/auth/login", data={"username": "ada@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401
    await login(client, "ada@example.com", NEW_PASSWORD)


async def test_reset_revokes_every_session(client: httpx.AsyncClient, ctx: AppContext) -> None:
    await register(client, "ada@example.com")
    sessions = [await login(client, "ada@example.com") for _ in range(2)]
    for s in sessions:  # cached as active
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {s['access_token']}"}
        )
        assert me.status_code == 200
    token = await _reset_token(client, ctx, "ada@example.com")

    assert (await _reset(client, token)).status_code == 204

    for s in sessions:
        me = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {s['access_token']}"}
        )
        assert me.status_code == 401
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": s["refresh_token"]}
        )
        assert refreshed.status_code == 401


async def test_reset_queues_a_password_changed_notice(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    token = await _reset_token(client, ctx, "ada@example.com")

    await _reset(client, token)
    await dispatch(ctx)  # the notice follows from the password.reset event

    [notice] = await outbox(ctx, "password_changed")
    assert notice.to_address == "ada@example.com"


async def test_reset_verifies_the_address(client: httpx.AsyncClient, ctx: AppContext) -> None:
    await register(client, "ada@example.com")
    await _reset(client, await _reset_token(client, ctx, "ada@example.com"))

    tokens = await login(client, "ada@example.com", NEW_PASSWORD)

    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["email_verified"] is True


async def test_reset_applies_the_password_policy_and_keeps_the_token(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    token = await _reset_token(client, ctx, "ada@example.com")

    weak = await _reset(client, token, "password")

    assert weak.status_code == 422
    assert weak.json()["code"] == "weak_password"
    # The field of the reset request, not the registration's.
    assert [e["loc"] for e in weak.json()["errors"]] == [["body", "new_password"]]
    await dispatch(ctx)
    assert await outbox(ctx, "password_changed") == []
    assert (await _reset(client, token)).status_code == 204


# --- bad tokens ----------------------------------------------------------------------------


async def _assert_invalid(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_token"


async def test_used_reset_token_is_400(client: httpx.AsyncClient, ctx: AppContext) -> None:
    await register(client, "ada@example.com")
    token = await _reset_token(client, ctx, "ada@example.com")
    assert (await _reset(client, token)).status_code == 204

    await _assert_invalid(await _reset(client, token, "yet another battery staple"))


async def test_reset_token_expires_after_15_minutes(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    token = await _reset_token(client, ctx, "ada@example.com")
    clock.advance(minutes=15)

    await _assert_invalid(await _reset(client, token))


async def test_reset_token_works_just_before_expiry(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    token = await _reset_token(client, ctx, "ada@example.com")
    clock.advance(minutes=14, seconds=59)

    assert (await _reset(client, token)).status_code == 204


async def test_newer_request_invalidates_older_reset_tokens(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    older = await _reset_token(client, ctx, "ada@example.com")
    clock.advance(seconds=1)
    newer = await _reset_token(client, ctx, "ada@example.com")
    assert newer != older

    await _assert_invalid(await _reset(client, older))
    assert (await _reset(client, newer)).status_code == 204


async def test_verification_token_used_for_reset_is_400(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    verify_token = await queued_token(ctx, "verify_email", "ada@example.com")

    await _assert_invalid(await _reset(client, verify_token))


@pytest.mark.parametrize(
    "token",
    ["", "not a token!", "Qm9vdHN0cmFwIHRva2VuIGV4YW1wbGUgMDEyMzQ1Njc4OQ"],
    ids=["empty", "malformed", "unknown"],
)
async def test_bad_reset_token_is_400(client: httpx.AsyncClient, token: str) -> None:
    await _assert_invalid(await _reset(client, token))


async def test_huge_reset_token_is_422(client: httpx.AsyncClient) -> None:
    response = await _reset(client, "x" * 100_000)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


# --- password change (authenticated) -------------------------------------------------------


async def test_password_change_queues_a_notice(client: httpx.AsyncClient, ctx: AppContext) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    response = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )

    assert response.status_code == 204
    await dispatch(ctx)  # the notice follows from the password.changed event
    [notice] = await outbox(ctx, "password_changed")
    assert notice.to_address == "ada@example.com"


async def test_refused_password_change_queues_no_notice(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    response = await client.post(
        "/api/v1/users/me/password",
        json={"current_password": "wrong password here", "new_password": NEW_PASSWORD},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )

    assert response.status_code == 403
    await dispatch(ctx)
    assert await outbox(ctx, "password_changed") == []


@pytest.mark.parametrize("email", ["ada@example.com", "nobody@example.com"])
async def test_forgot_is_rate_limited_per_address_known_or_not(
    client: httpx.AsyncClient, ctx: AppContext, email: str
) -> None:
    await register(client, "ada@example.com")
    for _ in range(5):
        assert (await _forgot(client, email.upper())).status_code == 202

    refused = await _forgot(client, email)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert "Retry-After" in refused.headers
    assert (await _forgot(client, "other@example.com")).status_code == 202


# --- deleted accounts ----------------------------------------------------------------------


async def _soft_delete(ctx: AppContext, email: str) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from atrium.models import User

    async with ctx.sessionmaker() as db, db.begin():
        await db.execute(
            update(User).where(User.email == email).values(deleted_at=datetime.now(UTC))
        )


async def test_forgot_for_a_deleted_account_sends_nothing(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")
    await _soft_delete(ctx, "ada@example.com")

    assert (await _forgot(client, "ada@example.com")).status_code == 202
    assert await outbox(ctx, "reset_password") == []


@pytest.mark.parametrize("state", ["deleted", "suspended"])
async def test_a_reset_link_of_an_account_deleted_or_suspended_since_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, state: str
) -> None:
    from sqlalchemy import update

    from atrium.models import User

    await register(client, "ada@example.com")
    token = await _reset_token(client, ctx, "ada@example.com")
    if state == "deleted":
        await _soft_delete(ctx, "ada@example.com")
    else:
        async with ctx.sessionmaker() as db, db.begin():
            await db.execute(update(User).values(status="suspended"))

    response = await _reset(client, token)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"
    await dispatch(ctx)
    assert await outbox(ctx, "password_changed") == []
