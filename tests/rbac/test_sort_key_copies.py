"""The copies of an account's sort keys in its role grants stay equal to the account's
values when a grant and an account update run at the same time (PostgreSQL; SQLite runs
one writer at a time)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from atrium.context import AppContext
from atrium.models import User, UserRole
from atrium.rbac.permissions import BUILTIN_ROLE_IDS
from atrium.rbac.repository import RoleRepository
from tests.conftest import Database
from tests.factories import insert_user

LOGIN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


async def test_a_login_during_a_grant_reaches_the_new_grants_copy(
    ctx: AppContext, database: Database
) -> None:
    if database.backend != "postgresql":
        pytest.skip("row locks and READ COMMITTED are PostgreSQL's")
    uid = await insert_user(ctx, email="ada@example.com")
    moderator = BUILTIN_ROLE_IDS["moderator"]

    async with ctx.sessionmaker() as granting:
        await RoleRepository(granting).grant([uid], moderator, ctx.clock.now(), None)

        async def log_in() -> None:
            async with ctx.sessionmaker() as db:
                await db.execute(update(User).where(User.id == uid).values(last_login_at=LOGIN))
                await db.commit()

        login = asyncio.create_task(log_in())
        # Without the grant's FOR SHARE the login commits here, before the grant, and its
        # trigger cannot see the grant's row; with it, the login waits for the grant.
        await asyncio.sleep(0.3)
        await granting.commit()
        await asyncio.wait_for(login, 10)

    async with ctx.sessionmaker() as db:
        copy = await db.scalar(
            select(UserRole.user_last_login_at).where(
                UserRole.user_id == uid, UserRole.role_id == moderator
            )
        )
    assert copy == LOGIN
