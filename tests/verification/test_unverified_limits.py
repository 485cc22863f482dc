"""``auth.unverified_allowed_actions``: what an account with an unverified email may do."""

from __future__ import annotations

import httpx
import pytest

from atrium.config import Settings
from atrium.context import AppContext
from tests.factories import signed_in
from tests.mailbox import queued_token


@pytest.fixture
def settings(settings: Settings) -> Settings:
    auth = settings.auth.model_copy(update={"unverified_allowed_actions": ["own_sessions.read"]})
    return settings.model_copy(update={"auth": auth})


async def test_action_not_allowed_to_unverified_accounts_is_403(
    client: httpx.AsyncClient,
) -> None:
    auth = await signed_in(client)

    response = await client.patch("/api/v1/users/me", json={"full_name": "Ada"}, headers=auth)

    assert response.status_code == 403
    assert response.json()["code"] == "email_not_verified"


async def test_allowed_action_and_own_account_stay_available(client: httpx.AsyncClient) -> None:
    auth = await signed_in(client)

    assert (await client.get("/api/v1/users/me/sessions", headers=auth)).status_code == 200
    me = await client.get("/api/v1/users/me", headers=auth)
    assert me.status_code == 200
    assert me.json()["email_verified"] is False
    resend = await client.post("/api/v1/auth/verify-email/resend", headers=auth)
    assert resend.status_code == 202


async def test_verified_account_may_do_everything(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await signed_in(client)
    token = await queued_token(ctx, "verify_email", "ada@example.com")
    assert (
        await client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 204

    response = await client.patch("/api/v1/users/me", json={"full_name": "Ada"}, headers=auth)

    assert response.status_code == 200


def test_unverified_actions_cannot_be_mistaken_for_permissions() -> None:
    from atrium.config import UnverifiedAction
    from atrium.rbac.permissions import PERMISSIONS

    # Every permission is "<resource>:<action>"; no unverified-account action has a colon.
    assert all(":" in permission for permission in PERMISSIONS)
    assert not any(":" in action.value for action in UnverifiedAction)
    assert not {action.value for action in UnverifiedAction} & set(PERMISSIONS)


def test_earlier_spellings_of_the_actions_are_still_read() -> None:
    from atrium.config import AuthSettings, UnverifiedAction

    auth = AuthSettings(unverified_allowed_actions=["sessions:revoke", "own_account.update"])
    assert auth.unverified_allowed_actions == [
        UnverifiedAction.revoke_own_sessions,
        UnverifiedAction.update_own_account,
    ]
