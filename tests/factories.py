"""Helpers that create data through the public API."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import httpx

from atrium.context import AppContext
from atrium.models import User
from atrium.rbac.repository import RoleRepository

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


# --- direct database helpers (roles, accounts with chosen fields) -------------------------

_seq = itertools.count()


async def grant_role(ctx: AppContext, user_id: str | uuid.UUID, role: str) -> None:
    """Give ``role`` to a user directly in the database, then publish the change."""
    async with ctx.sessionmaker() as db:
        found = await RoleRepository(db).get(role)
        assert found is not None, role
        await RoleRepository(db).grant([uuid.UUID(str(user_id))], found.id, ctx.clock.now(), None)
        await db.commit()
    await ctx.rbac.publish_change()
    await ctx.principals.forget_users([uuid.UUID(str(user_id))])


async def signed_in_as(
    client: httpx.AsyncClient, ctx: AppContext, email: str, *roles: str
) -> tuple[str, dict[str, str]]:
    """Register ``email``, give it ``roles``, log in; its id and Authorization header."""
    user = await register(client, email)
    for role in roles:
        await grant_role(ctx, user["id"], role)
    tokens = await login(client, email)
    return user["id"], {"Authorization": f"Bearer {tokens['access_token']}"}


async def insert_user(ctx: AppContext, **fields: Any) -> uuid.UUID:
    """Insert an account with chosen fields (no password that can log in), role ``user``."""
    n = next(_seq)
    now = ctx.clock.now()
    values: dict[str, Any] = {
        "id": uuid.uuid4(),
        "email": f"user{n}@example.com",
        "password_hash": "x",
        "status": "active",
        "created_at": now,
        "updated_at": now,
        "profile_verified": False,
    }
    values.update(fields)
    values.setdefault("email_normalized", values["email"].casefold())
    async with ctx.sessionmaker() as db:
        db.add(User(**values))
        await db.flush()
        await RoleRepository(db).grant_builtin(values["id"], "user", now)
        await db.commit()
    user_id: uuid.UUID = values["id"]
    return user_id
