"""Email change: a link to the new address, a notice to the old, the change applied only
when the link is used and only if the address is still free."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import PASSWORD, login, register, signed_in
from tests.mailbox import SmtpSink, outbox, queued_token, smtp_worker

CHANGE = "/api/v1/users/me/email"
CONFIRM = "/api/v1/auth/email-change/confirm"


async def _change(
    client: httpx.AsyncClient, auth: dict[str, str], new_email: str, password: str = PASSWORD
) -> httpx.Response:
    return await client.post(
        CHANGE, json={"new_email": new_email, "password": password}, headers=auth
    )


async def _me(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/api/v1/users/me", headers=auth)).json()
    return body


async def test_change_sends_a_link_to_the_new_address_and_a_notice_to_the_old(
    client: httpx.AsyncClient, ctx: AppContext, smtp_server: SmtpSink
) -> None:
    auth = await signed_in(client)

    response = await _change(client, auth, "ada@new.example")

    assert response.status_code == 202
    await smtp_worker(ctx, smtp_server.port).drain()
    [link_mail] = smtp_server.to("ada@new.example")
    assert link_mail.message["Subject"] == "Confirm your new email address for Atrium"
    assert "ada@new.example" in link_mail.text
    assert link_mail.link in link_mail.html
    notices = [
        m
        for m in smtp_server.to("ada@example.com")
        if m.message["Subject"] == "Your Atrium email address is being changed"
    ]
    assert len(notices) == 1
    assert "ada@new.example" in notices[0].text
    assert "http" not in notices[0].text  # the notice carries no link
    assert (await _me(client, auth))["email"] == "ada@example.com"  # not yet

    confirmed = await client.post(CONFIRM, json={"token": link_mail.token})

    assert confirmed.status_code == 204
    me = await _me(client, auth)  # same access token: the cached snapshot was dropped
    assert me["email"] == "ada@new.example"
    assert me["email_verified"] is True


async def test_after_the_change_login_uses_the_new_address(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await _change(client, auth, "Ada@New.example")
    await client.post(
        CONFIRM, json={"token": await queued_token(ctx, "confirm_email_change", "Ada@new.example")}
    )

    await login(client, "ada@new.example")
    old = await client.post(
        "/api/v1/auth/login", data={"username": "ada@example.com", "password": PASSWORD}
    )
    assert old.status_code == 401


async def test_wrong_password_is_403_and_sends_nothing(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)

    response = await _change(client, auth, "ada@new.example", "not my password at all")

    assert response.status_code == 403
    assert response.json()["code"] == "incorrect_password"
    assert await outbox(ctx, "confirm_email_change") == []
    assert await outbox(ctx, "email_change_requested") == []


async def test_address_of_another_account_is_409(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await register(client, "bob@example.com")
    auth = await signed_in(client)

    response = await _change(client, auth, "BOB@example.com")

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert await outbox(ctx, "confirm_email_change") == []


async def test_same_address_is_422_email_unchanged(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await _change(client, auth, "ADA@example.com")

    assert response.status_code == 422
    assert response.json()["code"] == "email_unchanged"


async def test_invalid_address_is_422(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await _change(client, auth, "not an address")

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_email"


async def test_address_taken_before_confirmation_is_409_and_nothing_changes(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await _change(client, auth, "ada@new.example")
    token = await queued_token(ctx, "confirm_email_change", "ada@new.example")
    await register(client, "ada@new.example")  # someone else takes it meanwhile

    response = await client.post(CONFIRM, json={"token": token})

    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"
    assert (await _me(client, auth))["email"] == "ada@example.com"


async def test_change_requires_authentication(client: httpx.AsyncClient) -> None:
    response = await client.post(CHANGE, json={"new_email": "a@b.example", "password": PASSWORD})

    assert response.status_code == 401


async def test_newer_change_request_replaces_the_older_link(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    await _change(client, auth, "first@new.example")
    older = await queued_token(ctx, "confirm_email_change", "first@new.example")
    clock.advance(seconds=1)
    await _change(client, auth, "second@new.example")

    refused = await client.post(CONFIRM, json={"token": older})

    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_token"


# --- bad tokens ----------------------------------------------------------------------------


async def test_expired_change_token_is_400(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    auth = await signed_in(client)
    await _change(client, auth, "ada@new.example")
    token = await queued_token(ctx, "confirm_email_change", "ada@new.example")
    clock.advance(seconds=ctx.settings.auth.email_change_ttl_seconds)

    response = await client.post(CONFIRM, json={"token": token})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"


async def test_used_change_token_is_400(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await signed_in(client)
    await _change(client, auth, "ada@new.example")
    token = await queued_token(ctx, "confirm_email_change", "ada@new.example")
    assert (await client.post(CONFIRM, json={"token": token})).status_code == 204

    response = await client.post(CONFIRM, json={"token": token})

    assert response.status_code == 400


async def test_change_token_and_verification_token_are_not_interchangeable(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    await _change(client, auth, "ada@new.example")
    change_token = await queued_token(ctx, "confirm_email_change", "ada@new.example")
    verify_token = await queued_token(ctx, "verify_email", "ada@example.com")

    as_verify = await client.post("/api/v1/auth/verify-email", json={"token": change_token})
    as_change = await client.post(CONFIRM, json={"token": verify_token})

    assert as_verify.status_code == as_change.status_code == 400
    assert (await _me(client, auth))["email"] == "ada@example.com"


@pytest.mark.parametrize("token", ["", "bad token", "Qm9vdHN0cmFwIHRva2VuIGV4YW1wbGUgMDEy"])
async def test_bad_change_token_is_400(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post(CONFIRM, json={"token": token})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_token"
