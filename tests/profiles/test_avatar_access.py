"""Avatar images follow their profile: nobody fetches the avatar of a deleted or suspended
account, and a members-only or private profile's avatar goes only to callers who may see
the profile, never into a shared cache."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from atrium.context import AppContext
from atrium.models import User
from tests.factories import signed_in, signed_in_as
from tests.images import image_bytes

AVATAR = "/api/v1/users/me/avatar"
PROFILE = "/api/v1/users/me/profile"
SEES = {
    "public": {"anonymous", "member", "owner", "moderator"},
    "members": {"member", "owner", "moderator"},
    "private": {"owner", "moderator"},
}


async def avatar_of(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, str]:
    files = {"file": ("me.png", image_bytes("PNG", (20, 20)), "image/png")}
    response = await client.put(AVATAR, files=files, headers=auth)
    assert response.status_code == 200, response.text
    urls: dict[str, str] = response.json()["avatar"]
    return urls


async def set_state(ctx: AppContext, email: str, **values: object) -> None:
    async with ctx.sessionmaker() as db, db.begin():
        await db.execute(update(User).where(User.email == email).values(**values))


@pytest.mark.parametrize(
    "state",
    [{"deleted_at": datetime(2026, 1, 1, tzinfo=UTC)}, {"status": "suspended"}],
    ids=["deleted", "suspended"],
)
async def test_the_avatar_of_an_inactive_account_is_404_for_everyone(
    client: httpx.AsyncClient, ctx: AppContext, state: dict[str, object]
) -> None:
    owner = await signed_in(client, "owner@example.com")
    _, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    urls = await avatar_of(client, owner)
    assert (await client.get(urls["64"])).status_code == 200
    await set_state(ctx, "owner@example.com", **state)

    for headers in ({}, moderator):
        for url in urls.values():
            response = await client.get(url, headers=headers)

            assert response.status_code == 404
            assert response.json()["code"] == "avatar_not_found"


@pytest.mark.parametrize("visibility", list(SEES))
@pytest.mark.parametrize("caller", ["anonymous", "member", "owner", "moderator"])
async def test_an_avatar_is_served_to_whoever_may_see_the_profile(
    client: httpx.AsyncClient, ctx: AppContext, visibility: str, caller: str
) -> None:
    owner = await signed_in(client, "owner@example.com")
    member = await signed_in(client, "member@example.com")
    _, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    auth = {"anonymous": {}, "member": member, "owner": owner, "moderator": moderator}
    urls = await avatar_of(client, owner)
    patch = {"username": "lisbon_dev", "visibility": visibility}
    assert (await client.patch(PROFILE, json=patch, headers=owner)).status_code == 200

    response = await client.get(urls["256"], headers=auth[caller])

    if caller not in SEES[visibility]:
        assert response.status_code == 404
        assert response.json()["code"] == "avatar_not_found"
    elif visibility == "public":
        assert response.status_code == 200
        assert response.headers["cache-control"].startswith("public")
    else:
        assert response.status_code == 200
        assert response.headers["cache-control"] == "private, no-store"
        assert "authorization" in response.headers["vary"].lower()


async def test_a_replaced_avatar_is_404_at_once(client: httpx.AsyncClient) -> None:
    owner = await signed_in(client, "owner@example.com")
    first = await avatar_of(client, owner)
    await client.delete(AVATAR, headers=owner)

    assert (await client.get(first["64"])).status_code == 404
