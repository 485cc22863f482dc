"""Database look-ups shared by the social-login tests."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from atrium.context import AppContext
from atrium.models import AuditEvent, OutboxMessage, User, UserIdentity
from tests.factories import register


async def identities(ctx: AppContext) -> list[UserIdentity]:
    async with ctx.sessionmaker() as db:
        return list((await db.scalars(select(UserIdentity))).all())


async def user_by_email(ctx: AppContext, email: str) -> User | None:
    async with ctx.sessionmaker() as db:
        return await db.scalar(select(User).where(User.email_normalized == email))


async def mails(ctx: AppContext, template: str) -> list[OutboxMessage]:
    async with ctx.sessionmaker() as db:
        query = select(OutboxMessage).where(OutboxMessage.template == template)
        return list((await db.scalars(query)).all())


async def actions(ctx: AppContext) -> list[str]:
    async with ctx.sessionmaker() as db:
        return list((await db.scalars(select(AuditEvent.action))).all())


async def local_account(
    client: object, ctx: AppContext, email: str, *, verified: bool
) -> uuid.UUID:
    """A registered account (password ``tests.factories.PASSWORD``), verified or not."""
    body = await register(client, email)  # type: ignore[arg-type]
    user_id = uuid.UUID(body["id"])
    if verified:
        async with ctx.sessionmaker() as db:
            user = await db.get(User, user_id)
            assert user is not None
            user.email_verified_at = ctx.clock.now()
            await db.commit()
    return user_id
