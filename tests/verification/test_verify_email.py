"""Email verification: tokens (every bad case), resend with its rate limit, and what an
unverified account may do."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atrium.auth.dependencies import VerifiedUser
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import login, register, signed_in
from tests.mailbox import outbox, queued_token

URL = "/api/v1/auth/verify-email"
RESEND = "/api/v1/auth/verify-email/resend"


async def _verify(client: httpx.AsyncClient, token: Any) -> httpx.Response:
    return await client.post(URL, json={"token": token})


async def _me(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    response = await client.get("/api/v1/users/me", headers=auth)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def test_registration_queues_one_verification_email(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "ada@example.com")

    [row] = await outbox(ctx)
    assert row.template == "verify_email"
    assert row.to_address == "ada@example.com"
    assert row.context["hours"] == 24


async def test_verification_token_verifies_the_account(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    assert (await _me(client, auth))["email_verified"] is False  # now cached

    response = await _verify(client, await queued_token(ctx, "verify_email", "ada@example.com"))

    assert response.status_code == 204
    assert (await _me(client, auth))["email_verified"] is True


async def test_verification_token_is_valid_until_its_lifetime(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    clock.advance(seconds=ctx.settings.auth.email_verification_ttl_seconds - 1)

    response = await _verify(client, await queued_token(ctx, "verify_email", "ada@example.com"))

    assert response.status_code == 204


# --- every bad token -----------------------------------------------------------------------


async def _assert_invalid(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_token"


async def test_unknown_token_is_400_invalid_token(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")

    await _assert_invalid(await _verify(client, "Qm9vdHN0cmFwIHRva2VuIGV4YW1wbGUgMDEyMzQ1Njc4OQ"))


async def test_used_token_is_400_invalid_token(client: httpx.AsyncClient, ctx: AppContext) -> None:
    await register(client, "ada@example.com")
    token = await queued_token(ctx, "verify_email", "ada@example.com")
    assert (await _verify(client, token)).status_code == 204

    await _assert_invalid(await _verify(client, token))


async def test_expired_token_is_400_invalid_token(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    await register(client, "ada@example.com")
    token = await queued_token(ctx, "verify_email", "ada@example.com")
    clock.advance(seconds=ctx.settings.auth.email_verification_ttl_seconds)

    await _assert_invalid(await _verify(client, token))
    tokens = await login(client, "ada@example.com")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await _me(client, auth))["email_verified"] is False


async def test_reset_token_used_for_verification_is_400_invalid_token(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await client.post("/api/v1/auth/password/forgot", json={"email": "ada@example.com"})
    reset_token = await queued_token(ctx, "reset_password", "ada@example.com")

    await _assert_invalid(await _verify(client, reset_token))
    assert (await _me(client, auth))["email_verified"] is False
    # ... and the reset token was not consumed by the attempt.
    reset = await client.post(
        "/api/v1/auth/password/reset",
        json={"token": reset_token, "new_password": "a new battery staple"},
    )
    assert reset.status_code == 204


async def test_access_token_used_for_verification_is_400_invalid_token(
    client: httpx.AsyncClient,
) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    response = await client.post(URL, json={"token": tokens["access_token"][:128]})

    await _assert_invalid(response)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("not a token!", id="malformed"),
        pytest.param("%00%ff\u202e", id="control-and-unicode"),
        pytest.param("a" * 128, id="longest-accepted"),
    ],
)
async def test_malformed_token_is_400_invalid_token(client: httpx.AsyncClient, token: str) -> None:
    await _assert_invalid(await _verify(client, token))


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"token": "x" * 129}, id="129-chars"),
        pytest.param({"token": "x" * 100_000}, id="huge"),
        pytest.param({"token": None}, id="null"),
        pytest.param({"token": 123}, id="int"),
        pytest.param({}, id="missing"),
        pytest.param({"token": "abc", "user_id": "x"}, id="extra-field"),
    ],
)
async def test_oversized_or_mistyped_token_is_422(client: httpx.AsyncClient, body: Any) -> None:
    response = await client.post(URL, json=body)

    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_token_for_a_previous_address_is_400_invalid_token(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    old_token = await queued_token(ctx, "verify_email", "ada@example.com")
    change = await client.post(
        "/api/v1/users/me/email",
        json={"new_email": "ada@new.example", "password": "correct horse battery staple"},
        headers=auth,
    )
    assert change.status_code == 202
    confirm_token = await queued_token(ctx, "confirm_email_change", "ada@new.example")
    assert (
        await client.post("/api/v1/auth/email-change/confirm", json={"token": confirm_token})
    ).status_code == 204

    await _assert_invalid(await _verify(client, old_token))


# --- resend --------------------------------------------------------------------------------


async def test_resend_queues_a_new_link_and_both_work_once(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    first = await queued_token(ctx, "verify_email", "ada@example.com")
    clock.advance(seconds=1)

    response = await client.post(RESEND, headers=auth)

    assert response.status_code == 202
    assert len(await outbox(ctx, "verify_email")) == 2
    second = await queued_token(ctx, "verify_email", "ada@example.com")
    assert second != first
    assert (await _verify(client, second)).status_code == 204
    assert (await _verify(client, first)).status_code == 204  # older links stay valid


async def test_resend_is_rate_limited_per_account(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada = await signed_in(client, "ada@example.com")
    bob = await signed_in(client, "bob@example.com")
    for _ in range(3):
        assert (await client.post(RESEND, headers=ada)).status_code == 202

    refused = await client.post(RESEND, headers=ada)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.headers["RateLimit-Limit"] == "3"
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert len(await outbox(ctx, "verify_email")) == 2 + 3
    assert (await client.post(RESEND, headers=bob)).status_code == 202


async def test_resend_for_a_verified_account_sends_nothing(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await _verify(client, await queued_token(ctx, "verify_email", "ada@example.com"))

    response = await client.post(RESEND, headers=auth)

    assert response.status_code == 202
    assert len(await outbox(ctx, "verify_email")) == 1


async def test_resend_requires_authentication(client: httpx.AsyncClient) -> None:
    response = await client.post(RESEND)

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


# --- what an unverified account may do -----------------------------------------------------


async def test_verified_user_dependency_is_403_until_verified(
    app: Any, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    @app.get("/test/verified-only")
    async def verified_only(principal: VerifiedUser) -> dict[str, str]:
        return {"email": principal.user.email}

    auth = await signed_in(client)
    refused = await client.get("/test/verified-only", headers=auth)
    assert refused.status_code == 403
    assert refused.json()["code"] == "email_not_verified"

    await _verify(client, await queued_token(ctx, "verify_email", "ada@example.com"))

    allowed = await client.get("/test/verified-only", headers=auth)
    assert allowed.status_code == 200


async def test_default_settings_let_unverified_accounts_manage_their_account(
    client: httpx.AsyncClient,
) -> None:
    auth = await signed_in(client)

    assert (await client.get("/api/v1/users/me", headers=auth)).status_code == 200
    assert (await client.get("/api/v1/users/me/sessions", headers=auth)).status_code == 200
    patch = await client.patch("/api/v1/users/me", json={"full_name": "Ada"}, headers=auth)
    assert patch.status_code == 200
