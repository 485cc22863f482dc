"""GET /api/v1/profiles/{username}: every visibility x caller combination, every
per-field case, no enumeration, no email, the verified badge."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from atrium.context import AppContext
from tests.factories import signed_in, signed_in_as

PROFILE = "/api/v1/users/me/profile"
CALLERS = ("anonymous", "member", "owner", "moderator")
FIELDS = ("location", "website", "pronouns")

# Who sees a profile (or a field) of each visibility.
SEES = {
    "public": {"anonymous", "member", "owner", "moderator"},
    "members": {"member", "owner", "moderator"},
    "private": {"owner", "moderator"},
}


async def callers(client: httpx.AsyncClient, ctx: AppContext) -> dict[str, dict[str, str]]:
    owner = await signed_in(client, "owner@example.com")
    member = await signed_in(client, "member@example.com")
    _, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    return {"anonymous": {}, "member": member, "owner": owner, "moderator": moderator}


async def set_profile(client: httpx.AsyncClient, auth: dict[str, str], **fields: Any) -> None:
    body = {
        "username": "lisbon_dev",
        "display_name": "The Owner",
        "bio": "bio",
        "location": "Lisbon",
        "website": "https://owner.example.org",
        "pronouns": "they/them",
        **fields,
    }
    response = await client.patch(PROFILE, json=body, headers=auth)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("visibility", list(SEES))
@pytest.mark.parametrize("caller", CALLERS)
async def test_profile_visibility_for_each_caller(
    client: httpx.AsyncClient, ctx: AppContext, visibility: str, caller: str
) -> None:
    auth = await callers(client, ctx)
    await set_profile(client, auth["owner"], visibility=visibility)

    response = await client.get("/api/v1/profiles/lisbon_dev", headers=auth[caller])

    if caller in SEES[visibility]:
        assert response.status_code == 200, response.text
        assert response.json()["display_name"] == "The Owner"
    else:
        assert response.status_code == 404
        missing = await client.get("/api/v1/profiles/nobody", headers=auth[caller])
        # Exactly the answer for a handle that does not exist (no enumeration).
        assert response.json() == missing.json()
        assert response.headers["content-type"] == missing.headers["content-type"]


@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("field_visibility", list(SEES))
@pytest.mark.parametrize("caller", CALLERS)
async def test_field_visibility_for_each_caller(
    client: httpx.AsyncClient, ctx: AppContext, field: str, field_visibility: str, caller: str
) -> None:
    auth = await callers(client, ctx)
    await set_profile(client, auth["owner"], **{f"{field}_visibility": field_visibility})

    body = (await client.get("/api/v1/profiles/lisbon_dev", headers=auth[caller])).json()

    expected = {
        "location": "Lisbon",
        "website": "https://owner.example.org",
        "pronouns": "they/them",
    }
    for name in FIELDS:
        if name == field and caller not in SEES[field_visibility]:
            assert body[name] is None
        else:
            assert body[name] == expected[name]


@pytest.mark.parametrize("caller", CALLERS)
async def test_field_of_a_members_profile_is_never_shown_to_anonymous(
    client: httpx.AsyncClient, ctx: AppContext, caller: str
) -> None:
    auth = await callers(client, ctx)
    await set_profile(client, auth["owner"], visibility="members", website_visibility="public")

    response = await client.get("/api/v1/profiles/lisbon_dev", headers=auth[caller])

    assert response.status_code == (404 if caller == "anonymous" else 200)


@pytest.mark.parametrize("caller", CALLERS)
async def test_email_is_never_in_the_public_view(
    client: httpx.AsyncClient, ctx: AppContext, caller: str
) -> None:
    auth = await callers(client, ctx)
    await set_profile(client, auth["owner"])

    response = await client.get("/api/v1/profiles/lisbon_dev", headers=auth[caller])

    assert "owner@example.com" not in response.text
    assert "email" not in response.json()


async def test_lookup_is_case_insensitive(client: httpx.AsyncClient, ctx: AppContext) -> None:
    auth = await callers(client, ctx)
    await set_profile(client, auth["owner"])

    assert (await client.get("/api/v1/profiles/LISBON_DEV")).status_code == 200


async def test_suspended_account_has_no_public_profile(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await callers(client, ctx)
    await set_profile(client, auth["owner"])
    assert (await client.get("/api/v1/profiles/lisbon_dev")).status_code == 200
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    owner_id = (await client.get("/api/v1/users/me", headers=auth["owner"])).json()["id"]

    response = await client.patch(
        f"/api/v1/admin/users/{owner_id}", json={"status": "suspended"}, headers=admin
    )
    assert response.status_code == 200, response.text

    assert (await client.get("/api/v1/profiles/lisbon_dev")).status_code == 404


async def test_bad_token_on_a_public_profile_is_401(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    response = await client.get(
        "/api/v1/profiles/lisbon_dev", headers={"Authorization": "Bearer nonsense"}
    )

    assert response.status_code == 401


async def test_moderator_sets_and_clears_the_verified_badge(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await callers(client, ctx)
    await set_profile(client, auth["owner"])
    url = "/api/v1/profiles/lisbon_dev/verification"

    set_ = await client.put(url, json={"verified": True}, headers=auth["moderator"])

    assert set_.status_code == 200, set_.text
    assert (await client.get("/api/v1/profiles/lisbon_dev")).json()["verified"] is True
    assert (await client.get(PROFILE, headers=auth["owner"])).json()["verified"] is True
    await client.put(url, json={"verified": False}, headers=auth["moderator"])
    assert (await client.get("/api/v1/profiles/lisbon_dev")).json()["verified"] is False


@pytest.mark.parametrize("caller", ["anonymous", "member", "owner"])
async def test_only_moderators_set_the_badge(
    client: httpx.AsyncClient, ctx: AppContext, caller: str
) -> None:
    auth = await callers(client, ctx)
    await set_profile(client, auth["owner"])

    response = await client.put(
        "/api/v1/profiles/lisbon_dev/verification", json={"verified": True}, headers=auth[caller]
    )

    assert response.status_code == (401 if caller == "anonymous" else 403)
    assert (await client.get("/api/v1/profiles/lisbon_dev")).json()["verified"] is False


async def test_badge_of_an_unknown_profile_is_404(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    auth = await callers(client, ctx)

    response = await client.put(
        "/api/v1/profiles/ghost/verification", json={"verified": True}, headers=auth["moderator"]
    )

    assert response.status_code == 404
