"""A passkey as a second factor (issue 13): after a password at login
(``/auth/mfa/webauthn/options`` then ``/auth/mfa/verify {webauthn}``) and to step up;
passkeys counted as factors (``webauthn``) by MFA status, step-up and the login's
``mfa_required`` answer; step-up required to add or remove one. Real assertions signed by
the software authenticator (P-256, CBOR) and checked by py_webauthn."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from tests.factories import grant_role, login, register
from tests.mfa.helpers import (
    MFA,
    UA,
    VERIFY,
    actions,
    bearer,
    enrol_totp,
    events,
    mails,
    mfa_account,
    mfa_token,
    password_step,
    totp_code,
    verify_email,
)
from tests.passkeys.authenticator import SoftAuthenticator

PASSKEYS = "/api/v1/users/me/passkeys"
MFA_OPTIONS = "/api/v1/auth/mfa/webauthn/options"
STEP_UP = "/api/v1/auth/step-up"
PASSKEY_OPTIONS = "/api/v1/auth/passkey/options"
PASSKEY_LOGIN = "/api/v1/auth/passkey/login"


async def account(
    client: httpx.AsyncClient, ctx: AppContext, email: str = "ada@example.com"
) -> tuple[str, dict[str, Any]]:
    """A registered account with a verified email, signed in: (id, token pair)."""
    user = await register(client, email)
    await verify_email(ctx, user["id"])
    return user["id"], await login(client, email)


async def add_passkey(
    client: httpx.AsyncClient, tokens: dict[str, Any], authenticator: SoftAuthenticator
) -> httpx.Response:
    options = await client.post(f"{PASSKEYS}/registration/options", headers=bearer(tokens))
    assert options.status_code == 200, options.text
    return await client.post(
        f"{PASSKEYS}/registration",
        headers=bearer(tokens),
        json={"credential": authenticator.create(options.json()), "name": "Laptop"},
    )


async def passkey_account(
    client: httpx.AsyncClient,
    ctx: AppContext,
    authenticator: SoftAuthenticator,
    email: str = "ada@example.com",
) -> tuple[str, dict[str, Any], str]:
    """An account whose only factor is one passkey: (id, tokens, passkey id)."""
    user_id, tokens = await account(client, ctx, email)
    created = await add_passkey(client, tokens, authenticator)
    assert created.status_code == 201, created.text
    return user_id, tokens, created.json()["id"]


async def mfa_options(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(MFA_OPTIONS, json={"mfa_token": token}, headers=UA)


async def verify_with_passkey(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator, token: str, **kw: Any
) -> httpx.Response:
    options = await mfa_options(client, token)
    assert options.status_code == 200, options.text
    credential = authenticator.get(options.json()["public_key"], **kw)
    return await client.post(VERIFY, json={"mfa_token": token, "webauthn": credential}, headers=UA)


def claims(tokens: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(
        tokens["access_token"], options={"verify_signature": False}
    )
    return decoded


async def step_up_with_passkey(
    client: httpx.AsyncClient, tokens: dict[str, Any], authenticator: SoftAuthenticator
) -> httpx.Response:
    options = await client.post(f"{STEP_UP}/webauthn/options", headers=bearer(tokens))
    assert options.status_code == 200, options.text
    credential = authenticator.get(options.json()["public_key"])
    return await client.post(STEP_UP, headers=bearer(tokens), json={"webauthn": credential})


# --- login: password, then the passkey ------------------------------------------------------


async def test_a_password_login_of_an_account_with_a_passkey_asks_for_it(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, _, passkey_id = await passkey_account(client, ctx, SoftAuthenticator())

    response = await password_step(client, "ada@example.com")

    assert response.status_code == 401
    assert response.json()["code"] == "mfa_required"
    assert response.json()["factors"] == [{"id": passkey_id, "type": "webauthn"}]


async def test_a_login_offers_totp_first_then_the_passkeys_oldest_first_from_one_query(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock, queries: Any
) -> None:
    first = SoftAuthenticator()
    _, tokens, first_id = await passkey_account(client, ctx, first)
    stepped = (await step_up_with_passkey(client, tokens, first)).json()
    clock.advance(seconds=60)
    second = await add_passkey(client, stepped, SoftAuthenticator())
    assert second.status_code == 201, second.text
    clock.advance(seconds=60)
    # Enrolled last, offered first.
    totp_id, _, _ = await enrol_totp(client, clock, stepped)

    queries.statements.clear()
    response = await password_step(client, "ada@example.com")

    assert response.status_code == 401
    assert response.json()["factors"] == [
        {"id": totp_id, "type": "totp"},
        {"id": first_id, "type": "webauthn"},
        {"id": second.json()["id"], "type": "webauthn"},
    ]
    lookups = [q for q in queries.statements if "FROM mfa_factor" in q or "FROM passkey" in q]
    assert len(lookups) == 1, lookups
    assert "FROM passkey" in lookups[0]
    assert "FROM mfa_factor" in lookups[0]


async def test_the_passkey_as_second_factor_gives_aal2_with_pwd_hwk_user(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    await passkey_account(client, ctx, authenticator)
    token = await mfa_token(client, "ada@example.com")

    response = await verify_with_passkey(client, authenticator, token)

    assert response.status_code == 200, response.text
    assert response.json()["acr"] == "aal2"
    assert claims(response.json())["acr"] == "aal2"
    assert claims(response.json())["amr"] == ["pwd", "hwk", "user", "mfa"]
    logins = await events(ctx, "auth.login_succeeded")
    assert {"method": "webauthn"} in [e.details for e in logins]


async def test_a_synced_passkey_without_user_verification_is_still_aal2_after_the_password(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator(user_verification=False, synced=True)
    await passkey_account(client, ctx, authenticator)
    token = await mfa_token(client, "ada@example.com")

    response = await verify_with_passkey(client, authenticator, token)

    assert response.status_code == 200, response.text
    assert claims(response.json())["acr"] == "aal2"
    assert claims(response.json())["amr"] == ["pwd", "swk", "mfa"]


async def test_options_list_the_accounts_passkeys_and_leave_the_mfa_token_unspent(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    await passkey_account(client, ctx, authenticator)
    token = await mfa_token(client, "ada@example.com")

    first = (await mfa_options(client, token)).json()
    second = await verify_with_passkey(client, authenticator, token)

    allowed = [c["id"] for c in first["public_key"]["allowCredentials"]]
    assert allowed == [authenticator.get(first["public_key"])["rawId"]]
    assert second.status_code == 200, second.text


async def test_options_need_a_live_mfa_token_of_this_client(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await passkey_account(client, ctx, SoftAuthenticator())
    token = await mfa_token(client, "ada@example.com")

    unknown = await mfa_options(client, "x" * 43)
    other_client = await client.post(
        MFA_OPTIONS, json={"mfa_token": token}, headers={"User-Agent": "another browser"}
    )

    assert unknown.status_code == 401
    assert unknown.json()["code"] == "invalid_mfa_token"
    assert other_client.status_code == 401
    assert other_client.json()["code"] == "invalid_mfa_token"


async def test_options_for_an_account_without_a_passkey_are_409(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    _, tokens = await account(client, ctx)
    await enrol_totp(client, clock, tokens)
    token = await mfa_token(client, "ada@example.com")

    response = await mfa_options(client, token)

    assert response.status_code == 409
    assert response.json()["code"] == "no_passkey"


async def test_an_assertion_from_another_origin_is_refused_and_counted(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    await passkey_account(client, ctx, authenticator)
    token = await mfa_token(client, "ada@example.com")
    authenticator.origin = "https://evil.example"

    response = await verify_with_passkey(client, authenticator, token)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_otp"
    failures = await events(ctx, "auth.mfa_failed")
    assert [e.details for e in failures] == [{"method": "webauthn"}]


async def test_an_assertion_for_another_rp_id_is_refused(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    await passkey_account(client, ctx, authenticator)
    token = await mfa_token(client, "ada@example.com")
    authenticator.rp_id = "evil.example"

    response = await verify_with_passkey(client, authenticator, token)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_otp"


async def test_a_replayed_assertion_is_refused(client: httpx.AsyncClient, ctx: AppContext) -> None:
    authenticator = SoftAuthenticator()
    await passkey_account(client, ctx, authenticator)
    first_token = await mfa_token(client, "ada@example.com")
    options = (await mfa_options(client, first_token)).json()
    credential = authenticator.get(options["public_key"])
    ok = await client.post(
        VERIFY, json={"mfa_token": first_token, "webauthn": credential}, headers=UA
    )
    second_token = await mfa_token(client, "ada@example.com")

    replayed = await client.post(
        VERIFY, json={"mfa_token": second_token, "webauthn": credential}, headers=UA
    )

    assert ok.status_code == 200, ok.text
    assert replayed.status_code == 401
    assert replayed.json()["code"] == "invalid_otp"


async def test_a_challenge_spent_by_a_failed_assertion_stays_spent(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    await passkey_account(client, ctx, authenticator)
    token = await mfa_token(client, "ada@example.com")
    options = (await mfa_options(client, token)).json()["public_key"]
    forged = authenticator.get(options)
    forged["response"]["signature"] = authenticator.get(options)["response"]["signature"][::-1]
    failed = await client.post(VERIFY, json={"mfa_token": token, "webauthn": forged}, headers=UA)

    retried = await client.post(
        VERIFY, json={"mfa_token": token, "webauthn": authenticator.get(options)}, headers=UA
    )

    assert failed.status_code == 401
    assert retried.status_code == 401
    assert retried.json()["code"] == "invalid_otp"


async def test_a_signature_counter_going_backwards_is_refused(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    await passkey_account(client, ctx, authenticator)
    ok = await verify_with_passkey(
        client, authenticator, await mfa_token(client, "ada@example.com"), sign_count=10
    )

    cloned = await verify_with_passkey(
        client, authenticator, await mfa_token(client, "ada@example.com"), sign_count=5
    )

    assert ok.status_code == 200, ok.text
    assert cloned.status_code == 401
    assert cloned.json()["code"] == "invalid_otp"


async def test_another_accounts_passkey_is_refused(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ada_key, bob_key = SoftAuthenticator(), SoftAuthenticator()
    await passkey_account(client, ctx, ada_key, "ada@example.com")
    await passkey_account(client, ctx, bob_key, "bob@example.com")
    token = await mfa_token(client, "ada@example.com")

    response = await verify_with_passkey(client, bob_key, token)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_otp"


async def test_a_passkey_sign_in_without_user_verification_asks_for_another_kind(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    authenticator = SoftAuthenticator(user_verification=False)
    _, tokens, _ = await passkey_account(client, ctx, authenticator)
    stepped = await step_up_with_passkey(client, tokens, authenticator)
    factor_id, secret, _ = await enrol_totp(client, clock, stepped.json())
    clock.advance(seconds=30)
    options = (await client.post(PASSKEY_OPTIONS, json={})).json()
    passwordless = await client.post(
        PASSKEY_LOGIN,
        json={
            "challenge_id": options["challenge_id"],
            "credential": authenticator.get(options["public_key"]),
        },
        headers=UA,
    )
    token = passwordless.json()["mfa_token"]

    again = await verify_with_passkey(client, authenticator, token)
    with_code = await client.post(
        VERIFY, json={"mfa_token": token, "code": totp_code(secret, clock)}, headers=UA
    )

    assert passwordless.status_code == 401
    assert passwordless.json()["factors"] == [{"id": factor_id, "type": "totp"}]
    assert again.status_code == 400
    assert again.json()["code"] == "unsupported_method"
    assert with_code.status_code == 200, with_code.text
    assert claims(with_code.json())["amr"] == ["hwk", "otp", "mfa"]


async def test_a_passkey_only_account_without_user_verification_signs_in_at_aal1(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator(user_verification=False)
    await passkey_account(client, ctx, authenticator)
    options = (await client.post(PASSKEY_OPTIONS, json={})).json()

    response = await client.post(
        PASSKEY_LOGIN,
        json={
            "challenge_id": options["challenge_id"],
            "credential": authenticator.get(options["public_key"]),
        },
    )

    assert response.status_code == 200, response.text
    assert claims(response.json())["acr"] == "aal1"


# --- step-up with a passkey -------------------------------------------------------------------


async def test_step_up_with_a_passkey_raises_a_password_session_to_aal2(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    _, tokens, _ = await passkey_account(client, ctx, authenticator)

    response = await step_up_with_passkey(client, tokens, authenticator)

    assert response.status_code == 200, response.text
    assert claims(response.json())["acr"] == "aal2"
    assert claims(response.json())["amr"] == ["pwd", "hwk", "user", "mfa"]
    assert (await events(ctx, "auth.step_up"))[-1].details["method"] == "webauthn"


async def test_a_passkey_without_verification_does_not_raise_its_own_session(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator(user_verification=False)
    await passkey_account(client, ctx, authenticator)
    options = (await client.post(PASSKEY_OPTIONS, json={})).json()
    signed = await client.post(
        PASSKEY_LOGIN,
        json={
            "challenge_id": options["challenge_id"],
            "credential": authenticator.get(options["public_key"]),
        },
    )

    response = await step_up_with_passkey(client, signed.json(), authenticator)

    assert response.status_code == 200, response.text
    assert claims(response.json())["acr"] == "aal1"


async def test_step_up_options_for_an_account_without_a_passkey_are_409(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, tokens = await account(client, ctx)

    response = await client.post(f"{STEP_UP}/webauthn/options", headers=bearer(tokens))

    assert response.status_code == 409
    assert response.json()["code"] == "no_passkey"


# --- passkeys are factors: enrolment rules, status, removal ------------------------------------


async def test_adding_a_passkey_needs_a_verified_email(client: httpx.AsyncClient) -> None:
    await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")

    response = await client.post(f"{PASSKEYS}/registration/options", headers=bearer(tokens))

    assert response.status_code == 403
    assert response.json()["code"] == "email_not_verified"


async def test_adding_a_passkey_needs_a_recent_authentication(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    _, tokens = await account(client, ctx)
    clock.advance(seconds=ctx.settings.auth.step_up_max_age_seconds + 1)

    response = await client.post(f"{PASSKEYS}/registration/options", headers=bearer(tokens))

    assert response.status_code == 401
    assert response.json()["code"] == "step_up_required"
    max_age = ctx.settings.auth.step_up_max_age_seconds
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer error="insufficient_user_authentication", max_age={max_age}, acr_values="aal1"'
    )


@pytest.mark.parametrize("change", ["add", "delete"])
async def test_changing_passkeys_of_an_account_with_mfa_needs_aal2(
    client: httpx.AsyncClient, ctx: AppContext, change: str
) -> None:
    authenticator = SoftAuthenticator()
    _, tokens, passkey_id = await passkey_account(client, ctx, authenticator)

    if change == "add":
        response = await client.post(f"{PASSKEYS}/registration/options", headers=bearer(tokens))
    else:
        response = await client.delete(f"{PASSKEYS}/{passkey_id}", headers=bearer(tokens))

    assert response.status_code == 401
    assert response.json()["code"] == "step_up_required"
    max_age = ctx.settings.auth.step_up_max_age_seconds
    assert response.headers["WWW-Authenticate"] == (
        f'Bearer error="insufficient_user_authentication", max_age={max_age}, acr_values="aal2"'
    )
    stepped = (await step_up_with_passkey(client, tokens, authenticator)).json()
    if change == "add":
        after = await add_passkey(client, stepped, SoftAuthenticator())
        assert after.status_code == 201, after.text
    else:
        after = await client.delete(f"{PASSKEYS}/{passkey_id}", headers=bearer(stepped))
        assert after.status_code == 204


async def test_the_first_passkey_turns_mfa_on_and_revokes_other_aal1_sessions(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    _, tokens = await account(client, ctx)
    other = await login(client, "ada@example.com")

    created = await add_passkey(client, tokens, SoftAuthenticator())
    status = (await client.get(MFA, headers=bearer(tokens))).json()

    assert created.status_code == 201, created.text
    assert status["enabled"] is True
    assert [(f["id"], f["type"], f["status"]) for f in status["factors"]] == [
        (created.json()["id"], "webauthn", "verified")
    ]
    assert (await client.get("/api/v1/users/me", headers=bearer(other))).status_code == 401
    assert (await client.get("/api/v1/users/me", headers=bearer(tokens))).status_code == 200
    added = await events(ctx, "mfa.factor_added")
    assert [e.details["type"] for e in added] == ["webauthn"]
    assert len(await mails(ctx, "passkey_added")) == 1


async def test_removing_the_last_passkey_turns_mfa_off_and_emails_the_owner(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    _, tokens, passkey_id = await passkey_account(client, ctx, authenticator)
    stepped = (await step_up_with_passkey(client, tokens, authenticator)).json()
    codes = await client.post(f"{MFA}/recovery-codes", headers=bearer(stepped))
    assert codes.status_code == 200, codes.text

    deleted = await client.delete(f"{PASSKEYS}/{passkey_id}", headers=bearer(stepped))
    status = (await client.get(MFA, headers=bearer(stepped))).json()

    assert deleted.status_code == 204
    assert status["enabled"] is False
    assert status["recovery_codes_remaining"] == 0
    assert {"passkey.removed", "mfa.factor_removed"} <= set(await actions(ctx))
    removed = (await events(ctx, "mfa.factor_removed"))[-1]
    assert removed.details == {"factor_id": passkey_id, "type": "webauthn", "mfa_disabled": True}
    assert [m.to_address for m in await mails(ctx, "mfa_disabled")] == ["ada@example.com"]
    login_again = await password_step(client, "ada@example.com")
    assert login_again.status_code == 200


async def test_a_passkey_is_removed_through_the_mfa_factors_route_too(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    authenticator = SoftAuthenticator()
    _, tokens, passkey_id = await passkey_account(client, ctx, authenticator)
    stepped = (await step_up_with_passkey(client, tokens, authenticator)).json()

    deleted = await client.delete(f"{MFA}/{passkey_id}", headers=bearer(stepped))

    assert deleted.status_code == 204
    assert (await client.get(PASSKEYS, headers=bearer(stepped))).json() == []
    assert [m.to_address for m in await mails(ctx, "mfa_disabled")] == ["ada@example.com"]


async def test_an_admin_mfa_reset_removes_the_passkeys(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock
) -> None:
    user_id, _, _ = await passkey_account(client, ctx, SoftAuthenticator())
    admin = await mfa_account(client, ctx, clock, "root@example.com")
    await grant_role(ctx, admin.id, "admin")

    response = await client.delete(
        f"/api/v1/admin/users/{user_id}/mfa", headers=bearer(admin.tokens)
    )

    assert response.status_code == 204, response.text
    assert (await password_step(client, "ada@example.com")).status_code == 200
    [event] = await events(ctx, "admin.mfa_reset")
    assert event.details == {"factors": 1}
