"""Trusted devices, removing factors, and the administrators' MFA reset."""

from __future__ import annotations

from typing import Any

import httpx

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import signed_in_as
from tests.mfa.helpers import (
    MFA,
    UA,
    VERIFY,
    MfaAccount,
    bearer,
    events,
    mails,
    mfa_account,
    mfa_token,
    password_step,
    totp_code,
)

DEVICES = "/api/v1/users/me/trusted-devices"


async def remember(
    client: httpx.AsyncClient, clock: FrozenClock, account: MfaAccount
) -> dict[str, Any]:
    response = await client.post(
        VERIFY,
        json={
            "mfa_token": await mfa_token(client, account.email),
            "code": totp_code(account.secret, clock),
            "remember_device": True,
        },
        headers=UA,
    )
    assert response.status_code == 200, response.text
    clock.advance(seconds=30)
    body: dict[str, Any] = response.json()
    return body


async def test_a_trusted_device_skips_the_second_factor_only(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    tokens = await remember(client, clock, account)

    skipped = await password_step(client, account.email, device_token=tokens["device_token"])
    wrong_password = await password_step(
        client, account.email, "not the password", device_token=tokens["device_token"]
    )

    assert skipped.status_code == 200, skipped.text
    assert (skipped.json()["acr"], skipped.json()["amr"]) == ("aal1", ["pwd"])
    assert wrong_password.status_code == 401
    assert wrong_password.json()["code"] == "invalid_credentials"
    [device] = (await client.get(DEVICES, headers=bearer(tokens))).json()
    assert device["user_agent"] == "pytest"
    assert device["last_used_at"] is not None
    [notice] = await mails(ctx, "mfa_trusted_device_added")
    assert notice.context == {"device": "pytest"}
    assert len(await events(ctx, "mfa.trusted_device_added")) == 1


async def test_a_device_token_expires_after_thirty_days(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    tokens = await remember(client, clock, account)
    clock.advance(days=30)

    response = await password_step(client, account.email, device_token=tokens["device_token"])

    assert response.json()["code"] == "mfa_required"


async def test_a_revoked_device_asks_for_the_second_factor_again(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    tokens = await remember(client, clock, account)
    [device] = (await client.get(DEVICES, headers=bearer(tokens))).json()

    revoked = await client.delete(f"{DEVICES}/{device['id']}", headers=bearer(tokens))
    again = await client.delete(f"{DEVICES}/{device['id']}", headers=bearer(tokens))

    assert (revoked.status_code, again.status_code) == (204, 404)
    response = await password_step(client, account.email, device_token=tokens["device_token"])
    assert response.json()["code"] == "mfa_required"
    assert len(await events(ctx, "mfa.trusted_device_removed")) == 1


async def test_a_device_of_another_account_is_not_trusted(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    ada = await mfa_account(client, ctx, clock)
    bob = await mfa_account(client, ctx, clock, "bob@example.com")
    tokens = await remember(client, clock, ada)

    response = await password_step(client, bob.email, device_token=tokens["device_token"])

    assert response.json()["code"] == "mfa_required"


async def test_removing_the_last_factor_turns_mfa_off_and_forgets_the_devices(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    tokens = await remember(client, clock, account)

    removed = await client.delete(f"{MFA}/{account.factor_id}", headers=bearer(tokens))

    assert removed.status_code == 204, removed.text
    status = (await client.get(MFA, headers=bearer(tokens))).json()
    assert (status["enabled"], status["factors"], status["recovery_codes_remaining"]) == (
        False,
        [],
        0,
    )
    assert (await client.get(DEVICES, headers=bearer(tokens))).json() == []
    login = await password_step(client, account.email)
    assert login.status_code == 200
    [notice] = await mails(ctx, "mfa_disabled")
    assert notice.context == {"factor_name": "Phone"}
    [event] = await events(ctx, "mfa.factor_removed")
    assert event.details == {"factor_id": account.factor_id, "type": "totp", "mfa_disabled": True}


async def test_removing_a_factor_needs_aal2(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    tokens = await remember(client, clock, account)
    aal1 = (await password_step(client, account.email, device_token=tokens["device_token"])).json()

    response = await client.delete(f"{MFA}/{account.factor_id}", headers=bearer(aal1))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", max_age=600, acr_values="aal2"'
    )


async def test_password_reset_forgets_the_trusted_devices(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    from atrium.verification.service import AccountEmailService
    from tests.mailbox import token_of

    account = await mfa_account(client, ctx, clock)
    tokens = await remember(client, clock, account)
    async with ctx.sessionmaker() as db:
        await AccountEmailService(db, ctx).queue_password_reset(account.email)
        await db.commit()
    [reset] = await mails(ctx, "reset_password")
    response = await client.post(
        "/api/v1/auth/password/reset",
        json={"token": token_of(reset.context["link"]), "new_password": "a brand new passphrase"},
    )
    assert response.status_code in (200, 204), response.text

    login = await password_step(
        client, account.email, "a brand new passphrase", device_token=tokens["device_token"]
    )
    assert login.json()["code"] == "mfa_required"


async def test_an_admin_at_aal2_resets_a_users_mfa(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    admin = await mfa_account(client, ctx, clock, "root@example.com")
    from tests.factories import grant_role

    await grant_role(ctx, admin.id, "admin")
    aal1_id, aal1 = await signed_in_as(client, ctx, "plain@example.com", "admin")

    refused = await client.delete(f"/api/v1/admin/users/{account.id}/mfa", headers=aal1)
    response = await client.delete(
        f"/api/v1/admin/users/{account.id}/mfa", headers=bearer(admin.tokens)
    )

    assert (refused.status_code, refused.json()["code"]) == (401, "step_up_required")
    assert response.status_code == 204, response.text
    assert (await password_step(client, account.email)).status_code == 200
    [event] = await events(ctx, "admin.mfa_reset")
    assert (str(event.actor_id), event.target_id, event.details) == (
        admin.id,
        account.id,
        {"factors": 1},
    )
    [notice] = await mails(ctx, "mfa_reset")
    assert notice.to_address == account.email
    assert aal1_id != admin.id
