"""Helpers of the MFA tests: accounts with a verified email and a TOTP factor, codes from
pyotp at the app's frozen clock, the outbox and the audit trail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
from sqlalchemy import select, update

from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import AuditEvent, OutboxMessage, User
from tests.factories import PASSWORD, login, register

MFA = "/api/v1/users/me/mfa"
VERIFY = "/api/v1/auth/mfa/verify"
LOGIN = "/api/v1/auth/login"
UA = {"User-Agent": "pytest"}


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def totp_code(secret: str, clock: FrozenClock, steps: int = 0) -> str:
    """The code of ``secret`` at the app's clock, ``steps`` periods away (pyotp)."""
    return str(pyotp.TOTP(secret).at(clock.now(), counter_offset=steps))


async def verify_email(ctx: AppContext, user_id: str) -> None:
    async with ctx.sessionmaker() as db:
        await db.execute(
            update(User)
            .where(User.id == uuid.UUID(user_id))
            .values(email_verified_at=ctx.clock.now())
        )
        await db.commit()
    await ctx.principals.forget_users([uuid.UUID(user_id)])


@dataclass
class MfaAccount:
    id: str
    email: str
    secret: str
    factor_id: str
    recovery_codes: list[str]
    tokens: dict[str, Any]


async def enrol_totp(
    client: httpx.AsyncClient, clock: FrozenClock, tokens: dict[str, Any]
) -> tuple[str, str, dict[str, Any]]:
    """Enrol and verify a TOTP factor; (factor id, secret, verification body)."""
    started = await client.post(f"{MFA}/totp", json={"name": "Phone"}, headers=bearer(tokens))
    assert started.status_code == 201, started.text
    factor_id, secret = started.json()["factor_id"], started.json()["secret"]
    verified = await client.post(
        f"{MFA}/totp/{factor_id}/verify",
        json={"code": totp_code(secret, clock)},
        headers=bearer(tokens),
    )
    assert verified.status_code == 200, verified.text
    return factor_id, secret, verified.json()


async def mfa_account(
    client: httpx.AsyncClient, ctx: AppContext, clock: FrozenClock, email: str = "ada@example.com"
) -> MfaAccount:
    """A registered account with a verified email and one TOTP factor, signed in at aal2;
    the clock is moved one period on so that the next code is a fresh one."""
    user = await register(client, email)
    await verify_email(ctx, user["id"])
    tokens = await login(client, email)
    factor_id, secret, body = await enrol_totp(client, clock, tokens)
    clock.advance(seconds=30)
    return MfaAccount(user["id"], email, secret, factor_id, body["recovery_codes"], body["tokens"])


async def password_step(
    client: httpx.AsyncClient,
    email: str,
    password: str = PASSWORD,
    **form: str,
) -> httpx.Response:
    return await client.post(
        LOGIN, data={"username": email, "password": password, **form}, headers=UA
    )


async def mfa_token(client: httpx.AsyncClient, email: str) -> str:
    response = await password_step(client, email)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "mfa_required"
    token: str = response.json()["mfa_token"]
    return token


async def actions(ctx: AppContext) -> list[str]:
    async with ctx.sessionmaker() as db:
        rows = await db.execute(select(AuditEvent.action).order_by(AuditEvent.occurred_at))
        return list(rows.scalars())


async def events(ctx: AppContext, action: str) -> list[AuditEvent]:
    async with ctx.sessionmaker() as db:
        rows = await db.execute(select(AuditEvent).where(AuditEvent.action == action))
        return list(rows.scalars())


async def mails(ctx: AppContext, template: str) -> list[OutboxMessage]:
    async with ctx.sessionmaker() as db:
        rows = await db.execute(select(OutboxMessage).where(OutboxMessage.template == template))
        return list(rows.scalars())
