"""The core flow through the API: register, log in, call, refresh, log out."""

from __future__ import annotations

import httpx

from tests.factories import login, register


async def test_register_login_me_refresh_logout(client: httpx.AsyncClient) -> None:
    created = await register(client, "ada@example.com")
    tokens = await login(client, "ada@example.com")
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["id"] == created["id"]

    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["refresh_token"] != tokens["refresh_token"]

    auth = {"Authorization": f"Bearer {new['access_token']}"}
    out = await client.post("/api/v1/auth/logout", headers=auth)
    assert out.status_code == 204
    after = await client.get("/api/v1/users/me", headers=auth)
    assert after.status_code == 401
    assert after.json()["code"] == "invalid_token"
