"""Shared helpers of the privacy tests: an account holding every kind of data."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx

from atrium.context import AppContext
from atrium.core.jobs import JobContext
from atrium.models import ApiKey, MfaFactor, MfaRecoveryCode, Notification, UserIdentity
from atrium.models.activity import UserActivityDay
from tests.factories import login, register
from tests.images import image_bytes

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def job_context(ctx: AppContext) -> JobContext:
    return JobContext(ctx.settings, ctx.clock, ctx.engine, ctx.sessionmaker, {})


@dataclass
class Account:
    id: str
    email: str
    username: str
    full_name: str
    auth: dict[str, str]
    file_bytes: bytes
    secret: str  # the second factor's stored secret: must never be exported


async def rich_account(client: httpx.AsyncClient, ctx: AppContext, tag: str) -> Account:
    """An account with a profile, preferences, sessions, audit events, a notification, a
    linked identity, a second factor and recovery codes, an API key, a file and an avatar."""
    email = f"{tag}@example.com"
    user = await register(client, email)
    tokens = await login(client, email, user_agent=f"agent-{tag}")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    full_name = f"Full Name {tag.title()}"
    username = f"user_{tag}"
    r = await client.patch("/api/v1/users/me", json={"full_name": full_name}, headers=auth)
    assert r.status_code == 200, r.text
    r = await client.patch(
        "/api/v1/users/me/profile",
        json={"username": username, "bio": f"bio of {tag}", "location": f"City {tag}"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    r = await client.patch(
        "/api/v1/users/me/preferences",
        json={"theme": "dark"},
        headers=auth,
    )
    assert r.status_code == 200, r.text
    file_bytes = PDF + f"% file of {tag}\n".encode()
    r = await client.post(
        "/api/v1/files",
        files={"file": (f"report {tag}.pdf", file_bytes, "application/pdf")},
        headers=auth,
    )
    assert r.status_code == 201, r.text
    r = await client.put(
        "/api/v1/users/me/avatar",
        files={"file": ("me.png", image_bytes(), "image/png")},
        headers=auth,
    )
    assert r.status_code in (200, 201), r.text
    uid = uuid.UUID(user["id"])
    now = ctx.clock.now()
    secret = f"TOTPSECRET{tag.upper()}"
    async with ctx.sessionmaker() as db:
        db.add_all(
            [
                Notification(
                    user_id=uid,
                    category="account",
                    title=f"Hello {tag}",
                    body="A notice.",
                    created_at=now,
                ),
                UserIdentity(
                    user_id=uid,
                    provider="github",
                    issuer="https://github.com",
                    subject=f"gh-{tag}",
                    email=email,
                    created_at=now,
                ),
                MfaFactor(
                    user_id=uid,
                    type="totp",
                    name=f"phone {tag}",
                    secret_encrypted=secret,
                    created_at=now,
                    verified_at=now,
                ),
                MfaRecoveryCode(
                    user_id=uid, code_hash=hashlib.sha256(tag.encode()).digest(), created_at=now
                ),
                UserActivityDay(
                    user_id=uid,
                    day=now.date(),
                    first_seen_at=now,
                    last_seen_at=now,
                    requests=7,
                    logins=1,
                    active_sessions=1,
                    ip_prefix="203.0.113.0/24",
                ),
                ApiKey(
                    user_id=uid,
                    name=f"key {tag}",
                    prefix=f"atr_{tag[:4]}",
                    key_hash=hashlib.sha256(f"key-{tag}".encode()).digest(),
                    scopes=["profiles:read"],
                    created_at=now,
                    expires_at=now + timedelta(days=30),
                ),
            ]
        )
        await db.commit()
    return Account(user["id"], email, username, full_name, auth, file_bytes, secret)


async def json_of(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json()
