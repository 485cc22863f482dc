"""Passkeys with a software authenticator: registration, management, passwordless sign-in,
and the relying party's checks (origin, RP id, challenge reuse, signature counter)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import select

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuditEvent
from tests.factories import login, register
from tests.mailbox import outbox
from tests.mfa.helpers import verify_email
from tests.passkeys.authenticator import SoftAuthenticator, b64url

PASSKEYS = "/api/v1/users/me/passkeys"
OPTIONS = "/api/v1/auth/passkey/options"
LOGIN = "/api/v1/auth/passkey/login"
ME = "/api/v1/users/me"
STEP_UP = "/api/v1/auth/step-up"

# The app of the running test, for signed_in (a passkey is a second factor: registering
# one needs a verified email, like any factor).
_APP: list[AppContext] = []


@pytest.fixture(autouse=True)
def _app_ctx(ctx: AppContext) -> None:
    _APP[:] = [ctx]


async def signed_in(client: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, str]:
    """Register an account with a verified email and log in; its Authorization header."""
    user = await register(client, email)
    await verify_email(_APP[0], user["id"])
    tokens = await login(client, email)
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def step_up(
    client: httpx.AsyncClient, auth: dict[str, str], authenticator: SoftAuthenticator
) -> dict[str, str]:
    """Step up with the passkey (the account has MFA once it has one): the new header."""
    options = await client.post(f"{STEP_UP}/webauthn/options", headers=auth)
    assert options.status_code == 200, options.text
    credential = authenticator.get(options.json()["public_key"])
    stepped = await client.post(STEP_UP, headers=auth, json={"webauthn": credential})
    assert stepped.status_code == 200, stepped.text
    return {"Authorization": f"Bearer {stepped.json()['access_token']}"}


async def register_passkey(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    authenticator: SoftAuthenticator,
    name: str = "Laptop",
) -> httpx.Response:
    options = await client.post(f"{PASSKEYS}/registration/options", headers=auth)
    assert options.status_code == 200, options.text
    credential = authenticator.create(options.json())
    return await client.post(
        f"{PASSKEYS}/registration", headers=auth, json={"credential": credential, "name": name}
    )


async def sign_in_options(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post(OPTIONS, json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def passkey_login(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator, **body: Any
) -> httpx.Response:
    options = await sign_in_options(client, **body)
    credential = authenticator.get(options["public_key"])
    return await client.post(
        LOGIN, json={"challenge_id": options["challenge_id"], "credential": credential}
    )


async def audit_actions(ctx: AppContext) -> list[str]:
    async with ctx.sessionmaker() as db:
        return [e.action for e in (await db.execute(select(AuditEvent))).scalars()]


@pytest.fixture
def authenticator() -> SoftAuthenticator:
    return SoftAuthenticator()


# --- registration --------------------------------------------------------------------------


async def test_registration_options_ask_for_a_discoverable_credential_without_attestation(
    client: httpx.AsyncClient,
) -> None:
    auth = await signed_in(client, "ada@example.com")

    options = (await client.post(f"{PASSKEYS}/registration/options", headers=auth)).json()

    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "preferred"
    assert options["attestation"] == "none"
    assert options["rp"]["id"] == "127.0.0.1"
    assert options["user"]["name"] == "ada@example.com"
    assert options["excludeCredentials"] == []


async def test_a_registered_passkey_is_listed_audited_and_emailed(
    client: httpx.AsyncClient, ctx: AppContext, authenticator: SoftAuthenticator
) -> None:
    auth = await signed_in(client, "ada@example.com")

    created = await register_passkey(client, auth, authenticator)
    listed = (await client.get(PASSKEYS, headers=auth)).json()

    assert created.status_code == 201, created.text
    assert [p["id"] for p in listed] == [created.json()["id"]]
    assert listed[0]["name"] == "Laptop"
    assert listed[0]["device_type"] == "single_device"
    assert "passkey.added" in await audit_actions(ctx)
    assert [m.to_address for m in await outbox(ctx, "passkey_added")] == ["ada@example.com"]


async def test_the_next_options_exclude_the_registered_passkey(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    auth = await signed_in(client)
    await register_passkey(client, auth, authenticator)
    auth = await step_up(client, auth, authenticator)

    options = (await client.post(f"{PASSKEYS}/registration/options", headers=auth)).json()

    assert [c["id"] for c in options["excludeCredentials"]] == [b64url(authenticator.credential_id)]


async def test_registering_the_same_credential_twice_is_409(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    auth = await signed_in(client)
    assert (await register_passkey(client, auth, authenticator)).status_code == 201
    auth = await step_up(client, auth, authenticator)

    again = await register_passkey(client, auth, authenticator)

    assert again.status_code == 409
    assert again.json()["code"] == "passkey_exists"


async def test_registration_from_another_origin_is_refused(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await register_passkey(
        client, auth, SoftAuthenticator(origin="https://evil.example")
    )

    assert response.status_code == 400
    assert response.json()["code"] == "passkey_registration_failed"


async def test_registration_for_another_rp_id_is_refused(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    response = await register_passkey(client, auth, SoftAuthenticator(rp_id="evil.example"))

    assert response.status_code == 400
    assert response.json()["code"] == "passkey_registration_failed"


async def test_a_registration_challenge_is_single_use(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    auth = await signed_in(client)
    options = (await client.post(f"{PASSKEYS}/registration/options", headers=auth)).json()
    first = authenticator.create(options)
    second = SoftAuthenticator().create(options)

    ok = await client.post(
        f"{PASSKEYS}/registration", headers=auth, json={"credential": first, "name": "a"}
    )
    auth = await step_up(client, auth, authenticator)  # the account has MFA now
    replayed = await client.post(
        f"{PASSKEYS}/registration", headers=auth, json={"credential": second, "name": "b"}
    )

    assert ok.status_code == 201
    assert replayed.status_code == 400
    assert replayed.json()["code"] == "invalid_challenge"


async def test_another_accounts_registration_challenge_is_refused(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    ada = await signed_in(client, "ada@example.com")
    bob = await signed_in(client, "bob@example.com")
    options = (await client.post(f"{PASSKEYS}/registration/options", headers=ada)).json()

    response = await client.post(
        f"{PASSKEYS}/registration",
        headers=bob,
        json={"credential": authenticator.create(options), "name": "x"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_challenge"


async def test_a_malformed_credential_is_a_4xx(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    await client.post(f"{PASSKEYS}/registration/options", headers=auth)

    response = await client.post(
        f"{PASSKEYS}/registration",
        headers=auth,
        json={"credential": {"response": {"clientDataJSON": "!!"}}, "name": "x"},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_challenge"


# --- management ----------------------------------------------------------------------------


async def test_rename_and_delete_a_passkey(
    client: httpx.AsyncClient, ctx: AppContext, authenticator: SoftAuthenticator
) -> None:
    auth = await signed_in(client)
    passkey_id = (await register_passkey(client, auth, authenticator)).json()["id"]
    auth = await step_up(client, auth, authenticator)

    renamed = await client.patch(f"{PASSKEYS}/{passkey_id}", headers=auth, json={"name": "Phone"})
    deleted = await client.delete(f"{PASSKEYS}/{passkey_id}", headers=auth)

    assert renamed.json()["name"] == "Phone"
    assert deleted.status_code == 204
    assert (await client.get(PASSKEYS, headers=auth)).json() == []
    assert {"passkey.renamed", "passkey.removed"} <= set(await audit_actions(ctx))
    login = await passkey_login(client, authenticator)
    assert login.status_code == 401


async def test_another_accounts_passkey_is_404(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    ada = await signed_in(client, "ada@example.com")
    bob = await signed_in(client, "bob@example.com")
    passkey_id = (await register_passkey(client, ada, authenticator)).json()["id"]

    response = await client.delete(f"{PASSKEYS}/{passkey_id}", headers=bob)

    assert response.status_code == 404
    assert response.json()["code"] == "passkey_not_found"


# --- passwordless sign-in ------------------------------------------------------------------


async def test_sign_in_with_a_discoverable_passkey_answers_a_token_pair(
    client: httpx.AsyncClient, ctx: AppContext, authenticator: SoftAuthenticator
) -> None:
    auth = await signed_in(client, "ada@example.com")
    await register_passkey(client, auth, authenticator)

    response = await passkey_login(client, authenticator)

    assert response.status_code == 200, response.text
    tokens = response.json()
    me = await client.get(ME, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["email"] == "ada@example.com"
    assert tokens["refresh_token"]
    assert "auth.login_succeeded" in await audit_actions(ctx)
    # A device-bound passkey with user verification: two factors in one (NIST SP 800-63B
    # multi-factor cryptographic authenticator), RFC 8176 "hwk" + "user".
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert claims["acr"] == "aal2"
    assert sorted(claims["amr"]) == ["hwk", "user"]


async def test_a_synced_passkey_without_user_verification_is_aal1_swk(
    client: httpx.AsyncClient,
) -> None:
    authenticator = SoftAuthenticator(user_verification=False, synced=True)
    auth = await signed_in(client, "ada@example.com")
    await register_passkey(client, auth, authenticator)

    response = await passkey_login(client, authenticator)

    assert response.status_code == 200, response.text
    claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
    assert claims["acr"] == "aal1"
    assert claims["amr"] == ["swk"]


async def test_options_for_an_email_list_its_passkeys(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    auth = await signed_in(client, "ada@example.com")
    await register_passkey(client, auth, authenticator)

    known = await sign_in_options(client, email="ada@example.com")
    discoverable = await sign_in_options(client)

    assert len(known["public_key"]["allowCredentials"]) == 1
    assert discoverable["public_key"]["allowCredentials"] == []
    assert (await passkey_login(client, authenticator, email="ada@example.com")).status_code == 200


async def test_options_for_an_unknown_email_look_like_a_known_ones(
    client: httpx.AsyncClient,
) -> None:
    first = await sign_in_options(client, email="nobody@example.com")
    second = await sign_in_options(client, email="nobody@example.com")

    assert len(first["public_key"]["allowCredentials"]) == 1
    assert first["public_key"]["allowCredentials"] == second["public_key"]["allowCredentials"]


async def test_a_passkey_of_another_account_than_the_email_is_refused(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    ada = await signed_in(client, "ada@example.com")
    await register_passkey(client, ada, authenticator)
    await register_passkey(client, await signed_in(client, "bob@example.com"), SoftAuthenticator())

    response = await passkey_login(client, authenticator, email="bob@example.com")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_passkey"


async def test_an_assertion_from_another_origin_is_refused(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    await register_passkey(client, await signed_in(client), authenticator)
    authenticator.origin = "https://evil.example"

    response = await passkey_login(client, authenticator)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_passkey"


async def test_an_assertion_for_another_rp_id_is_refused(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    await register_passkey(client, await signed_in(client), authenticator)
    authenticator.rp_id = "evil.example"

    response = await passkey_login(client, authenticator)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_passkey"


async def test_a_replayed_challenge_is_refused(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    await register_passkey(client, await signed_in(client), authenticator)
    options = await sign_in_options(client)
    body = {
        "challenge_id": options["challenge_id"],
        "credential": authenticator.get(options["public_key"]),
    }
    assert (await client.post(LOGIN, json=body)).status_code == 200

    body["credential"] = authenticator.get(options["public_key"])  # a fresh counter
    replayed = await client.post(LOGIN, json=body)

    assert replayed.status_code == 400
    assert replayed.json()["code"] == "invalid_challenge"


async def test_a_challenge_spent_by_a_failed_attempt_stays_spent(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    await register_passkey(client, await signed_in(client), authenticator)
    options = await sign_in_options(client)
    wrong = authenticator.get(options["public_key"], challenge="d3Jvbmc")
    assert (
        await client.post(
            LOGIN, json={"challenge_id": options["challenge_id"], "credential": wrong}
        )
    ).status_code == 401

    right = authenticator.get(options["public_key"])
    response = await client.post(
        LOGIN, json={"challenge_id": options["challenge_id"], "credential": right}
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_challenge"


async def test_an_expired_challenge_is_refused(
    client: httpx.AsyncClient, clock: FrozenClock, authenticator: SoftAuthenticator
) -> None:
    await register_passkey(client, await signed_in(client), authenticator)
    options = await sign_in_options(client)

    clock.advance(seconds=301)
    response = await client.post(
        LOGIN,
        json={
            "challenge_id": options["challenge_id"],
            "credential": authenticator.get(options["public_key"]),
        },
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_challenge"


async def test_a_signature_counter_going_backwards_is_refused(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    await register_passkey(client, await signed_in(client), authenticator)
    options = await sign_in_options(client)
    first = authenticator.get(options["public_key"], sign_count=5)
    assert (
        await client.post(
            LOGIN, json={"challenge_id": options["challenge_id"], "credential": first}
        )
    ).status_code == 200

    options = await sign_in_options(client)
    cloned = authenticator.get(options["public_key"], sign_count=3)
    response = await client.post(
        LOGIN, json={"challenge_id": options["challenge_id"], "credential": cloned}
    )

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_passkey"


async def test_a_forged_signature_is_refused(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    await register_passkey(client, await signed_in(client), authenticator)
    impostor = SoftAuthenticator(credential_id=authenticator.credential_id)
    impostor.user_handle = authenticator.user_handle

    response = await passkey_login(client, impostor)

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_passkey"


async def test_concurrent_uses_of_one_assertion_counter_give_one_session(
    client: httpx.AsyncClient, authenticator: SoftAuthenticator
) -> None:
    await register_passkey(client, await signed_in(client), authenticator)
    bodies = []
    for _ in range(5):
        options = await sign_in_options(client)
        bodies.append(
            {
                "challenge_id": options["challenge_id"],
                "credential": authenticator.get(options["public_key"], sign_count=7),
            }
        )

    responses = await asyncio.gather(*(client.post(LOGIN, json=b) for b in bodies))

    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401, 401]


async def test_a_suspended_account_cannot_sign_in_with_its_passkey(
    client: httpx.AsyncClient, ctx: AppContext, authenticator: SoftAuthenticator
) -> None:
    from tests.factories import signed_in_as

    user_auth = await signed_in(client, "ada@example.com")
    await register_passkey(client, user_auth, authenticator)
    _, root = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    me = (await client.get(ME, headers=user_auth)).json()
    await client.patch(
        f"/api/v1/admin/users/{me['id']}", headers=root, json={"status": "suspended"}
    )

    response = await passkey_login(client, authenticator)

    assert response.status_code == 403
    assert response.json()["code"] == "account_suspended"


async def test_an_api_key_cannot_manage_passkeys(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)
    key = (await client.post("/api/v1/users/me/api-keys", headers=auth, json={"name": "k"})).json()[
        "key"
    ]

    response = await client.post(
        f"{PASSKEYS}/registration/options", headers={"Authorization": f"Bearer {key}"}
    )

    assert response.status_code == 403
    assert response.json()["code"] == "api_key_not_allowed"
