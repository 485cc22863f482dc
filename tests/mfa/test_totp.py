"""TOTP factors (RFC 6238) with a frozen clock and pyotp: enrolment, drift, replay."""

from __future__ import annotations

import httpx
import pyotp
import pytest
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import MfaFactor
from tests.factories import login, register
from tests.mfa.helpers import (
    MFA,
    VERIFY,
    bearer,
    enrol_totp,
    events,
    mails,
    mfa_account,
    mfa_token,
    totp_code,
    verify_email,
)

SESSIONS = "/api/v1/users/me/sessions"


async def test_enrolment_needs_a_verified_email(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    response = await client.post(f"{MFA}/totp", json={}, headers=bearer(tokens))

    assert response.status_code == 403
    assert response.json()["code"] == "email_not_verified"


async def test_enrolment_answers_the_secret_its_uri_and_a_qr_code(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    user = await register(client, "ada@example.com")
    await verify_email(ctx, user["id"])
    tokens = await login(client, "ada@example.com")

    response = await client.post(f"{MFA}/totp", json={"name": "Phone"}, headers=bearer(tokens))

    assert response.status_code == 201
    body = response.json()
    parsed = pyotp.parse_uri(body["otpauth_uri"])
    assert isinstance(parsed, pyotp.TOTP)
    assert (parsed.secret, parsed.issuer, parsed.name) == (
        body["secret"],
        "Atrium",
        "ada@example.com",
    )
    assert (parsed.digits, parsed.interval) == (6, 30)
    assert body["qr_svg"].lstrip().startswith(("<?xml", "<svg"))
    async with ctx.sessionmaker() as db:
        stored = (await db.execute(select(MfaFactor.secret_encrypted))).scalar_one()
    assert stored is not None
    assert body["secret"] not in stored
    status = (await client.get(MFA, headers=bearer(tokens))).json()
    assert status["enabled"] is False
    assert [f["status"] for f in status["factors"]] == ["pending"]


async def test_a_wrong_code_leaves_the_factor_pending(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    user = await register(client, "ada@example.com")
    await verify_email(ctx, user["id"])
    tokens = await login(client, "ada@example.com")
    started = (await client.post(f"{MFA}/totp", json={}, headers=bearer(tokens))).json()

    response = await client.post(
        f"{MFA}/totp/{started['factor_id']}/verify",
        json={"code": totp_code(started["secret"], clock, steps=3)},
        headers=bearer(tokens),
    )

    assert response.status_code == 422
    assert response.json()["code"] == "invalid_otp"
    assert (await client.get(MFA, headers=bearer(tokens))).json()["enabled"] is False


async def test_first_factor_turns_mfa_on_and_revokes_the_other_aal1_sessions(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    user = await register(client, "ada@example.com")
    await verify_email(ctx, user["id"])
    other = await login(client, "ada@example.com", user_agent="other device")
    tokens = await login(client, "ada@example.com")

    factor_id, _, body = await enrol_totp(client, clock, tokens)

    assert len(body["recovery_codes"]) == len(set(body["recovery_codes"])) == 10
    fresh = body["tokens"]
    assert (fresh["acr"], fresh["amr"]) == ("aal2", ["pwd", "otp", "mfa"])
    assert (await client.get(SESSIONS, headers=bearer(fresh))).status_code == 200
    assert (await client.get(SESSIONS, headers=bearer(other))).status_code == 401
    status = (await client.get(MFA, headers=bearer(fresh))).json()
    assert status["enabled"] is True
    assert status["recovery_codes_remaining"] == 10
    assert [(f["id"], f["status"]) for f in status["factors"]] == [(factor_id, "verified")]
    [added] = await events(ctx, "mfa.factor_added")
    assert added.details == {"factor_id": factor_id, "type": "totp"}
    [notice] = await mails(ctx, "mfa_factor_added")
    assert notice.to_address == "ada@example.com"


async def test_login_with_mfa_answers_mfa_required_then_verify_gives_aal2(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)

    first = await client.post(
        "/api/v1/auth/login",
        data={"username": account.email, "password": "correct horse battery staple"},
        headers={"User-Agent": "pytest"},
    )
    assert first.status_code == 401
    problem = first.json()
    assert problem["code"] == "mfa_required"
    assert problem["factors"] == [{"id": account.factor_id, "type": "totp"}]
    assert problem["expires_in"] == 300
    second = await client.post(
        VERIFY,
        json={"mfa_token": problem["mfa_token"], "code": totp_code(account.secret, clock)},
        headers={"User-Agent": "pytest"},
    )

    assert second.status_code == 200, second.text
    tokens = second.json()
    assert (tokens["acr"], tokens["amr"]) == ("aal2", ["pwd", "otp", "mfa"])
    assert tokens["device_token"] is None
    [*_, succeeded] = await events(ctx, "auth.login_succeeded")
    assert succeeded.details == {"method": "totp"}


@pytest.mark.parametrize("steps", [-1, 1])
async def test_a_code_one_step_away_is_accepted(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock, steps: int
) -> None:
    account = await mfa_account(client, ctx, clock)
    clock.advance(seconds=30)  # so that one step back is after the enrolment's step
    token = await mfa_token(client, account.email)

    response = await client.post(
        VERIFY,
        json={"mfa_token": token, "code": totp_code(account.secret, clock, steps)},
        headers={"User-Agent": "pytest"},
    )

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("steps", [-2, 2])
async def test_a_code_two_steps_away_is_refused(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock, steps: int
) -> None:
    account = await mfa_account(client, ctx, clock)
    clock.advance(seconds=60)  # so that two steps back is after the enrolment's step
    token = await mfa_token(client, account.email)

    response = await client.post(
        VERIFY,
        json={"mfa_token": token, "code": totp_code(account.secret, clock, steps)},
        headers={"User-Agent": "pytest"},
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_otp"


async def test_a_code_is_accepted_once(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    code = totp_code(account.secret, clock)
    first = await client.post(
        VERIFY,
        json={"mfa_token": await mfa_token(client, account.email), "code": code},
        headers={"User-Agent": "pytest"},
    )
    assert first.status_code == 200

    replay = await client.post(
        VERIFY,
        json={"mfa_token": await mfa_token(client, account.email), "code": code},
        headers={"User-Agent": "pytest"},
    )
    # The previous step's code is refused as well: the stored step only moves forward.
    older = await client.post(
        VERIFY,
        json={
            "mfa_token": await mfa_token(client, account.email),
            "code": totp_code(account.secret, clock, -1),
        },
        headers={"User-Agent": "pytest"},
    )
    clock.advance(seconds=30)
    fresh = await client.post(
        VERIFY,
        json={
            "mfa_token": await mfa_token(client, account.email),
            "code": totp_code(account.secret, clock),
        },
        headers={"User-Agent": "pytest"},
    )

    assert (replay.status_code, replay.json()["code"]) == (401, "invalid_otp")
    assert (older.status_code, older.json()["code"]) == (401, "invalid_otp")
    assert fresh.status_code == 200


async def test_the_mfa_token_is_single_use(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    token = await mfa_token(client, account.email)
    await client.post(
        VERIFY,
        json={"mfa_token": token, "code": totp_code(account.secret, clock)},
        headers={"User-Agent": "pytest"},
    )
    clock.advance(seconds=30)

    again = await client.post(
        VERIFY,
        json={"mfa_token": token, "code": totp_code(account.secret, clock)},
        headers={"User-Agent": "pytest"},
    )

    assert (again.status_code, again.json()["code"]) == (401, "invalid_mfa_token")


async def test_the_mfa_token_expires_after_five_minutes(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    token = await mfa_token(client, account.email)
    clock.advance(seconds=300)

    response = await client.post(
        VERIFY,
        json={"mfa_token": token, "code": totp_code(account.secret, clock)},
        headers={"User-Agent": "pytest"},
    )

    assert (response.status_code, response.json()["code"]) == (401, "invalid_mfa_token")


async def test_the_mfa_token_is_bound_to_the_client(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    token = await mfa_token(client, account.email)

    response = await client.post(
        VERIFY,
        json={"mfa_token": token, "code": totp_code(account.secret, clock)},
        headers={"User-Agent": "another browser"},
    )

    assert (response.status_code, response.json()["code"]) == (401, "invalid_mfa_token")


async def test_step_up_with_a_code_raises_the_session_to_aal2(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    account = await mfa_account(client, ctx, clock)
    device = await client.post(
        VERIFY,
        json={
            "mfa_token": await mfa_token(client, account.email),
            "code": totp_code(account.secret, clock),
            "remember_device": True,
        },
        headers={"User-Agent": "pytest"},
    )
    clock.advance(seconds=30)
    # A trusted device skips the second factor: that session is aal1.
    aal1 = await client.post(
        "/api/v1/auth/login",
        data={
            "username": account.email,
            "password": "correct horse battery staple",
            "device_token": device.json()["device_token"],
        },
        headers={"User-Agent": "pytest"},
    )
    assert aal1.json()["acr"] == "aal1"
    refused = await client.post("/api/v1/users/me/mfa/recovery-codes", headers=bearer(aal1.json()))

    stepped = await client.post(
        "/api/v1/auth/step-up",
        json={"code": totp_code(account.secret, clock)},
        headers=bearer(aal1.json()),
    )

    assert (refused.status_code, refused.json()["acr_values"]) == (401, "aal2")
    assert stepped.status_code == 200, stepped.text
    assert (stepped.json()["acr"], stepped.json()["amr"]) == ("aal2", ["pwd", "otp", "mfa"])
    regenerated = await client.post(
        "/api/v1/users/me/mfa/recovery-codes", headers=bearer(stepped.json())
    )
    assert regenerated.status_code == 200
