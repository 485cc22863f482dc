"""Public profile reads are cached, counted, and every change is visible on the next read."""

from __future__ import annotations

import httpx
import pytest

from atrium.context import AppContext
from atrium.core import metrics
from tests.conftest import QueryCounter
from tests.factories import signed_in, signed_in_as
from tests.images import image_bytes

PROFILE = "/api/v1/users/me/profile"
PUBLIC = "/api/v1/profiles/cached_one"


def lookups(result: str) -> float:
    value: float = metrics.CACHE_LOOKUPS.labels("profile", result)._value.get()
    return value


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> dict[str, str]:
    auth = await signed_in(client, "cached@example.com")
    response = await client.patch(
        PROFILE, json={"username": "cached_one", "bio": "v1", "location": "Oslo"}, headers=auth
    )
    assert response.status_code == 200
    return auth


async def warm(client: httpx.AsyncClient) -> dict[str, object]:
    """Two reads: the second one is served from the cache."""
    await client.get(PUBLIC)
    body: dict[str, object] = (await client.get(PUBLIC)).json()
    return body


async def test_second_read_is_a_cache_hit_without_queries(
    client: httpx.AsyncClient, owner: dict[str, str], queries: QueryCounter
) -> None:
    await client.get(PUBLIC)
    hits, misses = lookups("hit"), lookups("miss")
    before = queries.count

    response = await client.get(PUBLIC)

    assert response.status_code == 200
    assert lookups("hit") == hits + 1
    assert lookups("miss") == misses
    assert queries.count == before


async def test_first_read_is_a_counted_miss(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    misses = lookups("miss")

    await client.get(PUBLIC)

    assert lookups("miss") == misses + 1


async def test_profile_change_is_visible_on_the_next_read(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    assert (await warm(client))["bio"] == "v1"

    await client.patch(PROFILE, json={"bio": "v2"}, headers=owner)

    assert (await client.get(PUBLIC)).json()["bio"] == "v2"


async def test_privacy_change_is_visible_on_the_next_read(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    assert (await warm(client))["location"] == "Oslo"

    await client.patch(PROFILE, json={"location_visibility": "private"}, headers=owner)
    assert (await client.get(PUBLIC)).json()["location"] is None

    await client.patch(PROFILE, json={"visibility": "members"}, headers=owner)
    assert (await client.get(PUBLIC)).status_code == 404


async def test_username_change_is_visible_on_the_next_read(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    await warm(client)

    await client.patch(PROFILE, json={"username": "renamed"}, headers=owner)

    assert (await client.get(PUBLIC)).status_code == 404
    assert (await client.get("/api/v1/profiles/renamed")).json()["bio"] == "v1"


async def test_avatar_change_is_visible_on_the_next_read(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    assert (await warm(client))["avatar"] is None

    await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("a.png", image_bytes("PNG"), "image/png")},
        headers=owner,
    )
    assert (await client.get(PUBLIC)).json()["avatar"] is not None

    await client.delete("/api/v1/users/me/avatar", headers=owner)
    assert (await client.get(PUBLIC)).json()["avatar"] is None


async def test_badge_change_is_visible_on_the_next_read(
    client: httpx.AsyncClient, ctx: AppContext, owner: dict[str, str]
) -> None:
    _, moderator = await signed_in_as(client, ctx, "mod@example.com", "moderator")
    assert (await warm(client))["verified"] is False

    await client.put(
        "/api/v1/profiles/cached_one/verification", json={"verified": True}, headers=moderator
    )

    assert (await client.get(PUBLIC)).json()["verified"] is True


async def test_admin_badge_change_is_visible_on_the_next_read(
    client: httpx.AsyncClient, ctx: AppContext, owner: dict[str, str]
) -> None:
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    user_id = (await client.get("/api/v1/users/me", headers=owner)).json()["id"]
    await warm(client)

    await client.patch(
        f"/api/v1/admin/users/{user_id}", json={"profile_verified": True}, headers=admin
    )

    assert (await client.get(PUBLIC)).json()["verified"] is True


async def test_admin_soft_delete_and_restore_are_visible_on_the_next_read(
    client: httpx.AsyncClient, ctx: AppContext, owner: dict[str, str]
) -> None:
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    user_id = (await client.get("/api/v1/users/me", headers=owner)).json()["id"]
    await warm(client)

    await client.delete(f"/api/v1/admin/users/{user_id}", headers=admin)
    assert (await client.get(PUBLIC)).status_code == 404

    await client.post(f"/api/v1/admin/users/{user_id}/restore", headers=admin)
    assert (await client.get(PUBLIC)).status_code == 200


async def test_bulk_suspension_is_visible_on_the_next_read(
    client: httpx.AsyncClient, ctx: AppContext, owner: dict[str, str]
) -> None:
    _, admin = await signed_in_as(client, ctx, "admin@example.com", "admin")
    user_id = (await client.get("/api/v1/users/me", headers=owner)).json()["id"]
    await warm(client)

    response = await client.post(
        "/api/v1/admin/users/bulk", json={"action": "suspend", "ids": [user_id]}, headers=admin
    )
    assert response.status_code == 200, response.text

    assert (await client.get(PUBLIC)).status_code == 404


async def test_account_deletion_is_visible_on_the_next_read(
    client: httpx.AsyncClient, owner: dict[str, str]
) -> None:
    from tests.factories import PASSWORD

    await warm(client)

    response = await client.request(
        "DELETE", "/api/v1/users/me", json={"password": PASSWORD}, headers=owner
    )
    assert response.status_code == 202  # deletion scheduled; the account is hidden at once

    assert (await client.get(PUBLIC)).status_code == 404


async def test_forgetting_many_profiles_goes_in_batches_and_drops_only_those(
    ctx: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    from atrium.profiles.cache import forget_cached_profiles

    names = [f"user_{i}" for i in range(5)]
    await ctx.cache.set_many({f"profile:v1:{n}": b"{}" for n in [*names, "kept"]}, 60)
    deletes: list[int] = []
    delete = ctx.cache.delete

    async def counted(*keys: str) -> None:
        deletes.append(len(keys))
        await delete(*keys)

    monkeypatch.setattr(ctx.cache, "delete", counted)
    await forget_cached_profiles(ctx.cache, names, batch=2)

    keys = [f"profile:v1:{n}" for n in [*names, "kept"]]
    assert deletes == [2, 2, 1]
    assert await ctx.cache.get_many(keys) == [None] * 5 + [b"{}"]
