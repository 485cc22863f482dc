"""Helpers that create data through the public API."""

from __future__ import annotations

from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


async def register(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    *,
    user_agent: str = "pytest",
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/auth/login",
        data={"username": email, "password": password},
        headers={"User-Agent": user_agent},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def signed_in(client: httpx.AsyncClient, email: str = "ada@example.com") -> dict[str, str]:
    """Register and log in; the Authorization header of the new session."""
    await register(client, email)
    tokens = await login(client, email)
    return {"Authorization": f"Bearer {tokens['access_token']}"}
