"""``atrium seed`` on both backends (COPY on PostgreSQL, batched inserts on SQLite)."""

from __future__ import annotations

from sqlalchemy import func, or_, select

from atrium.activity.seeding import seed_activity
from atrium.config import Settings
from atrium.context import AppContext
from atrium.models import AnalyticsDay, LoginDay, User, UserActivityDay, UserRole
from atrium.seed import seed


async def test_seed_copies_each_accounts_sort_keys_into_its_role_grants(
    settings: Settings, ctx: AppContext
) -> None:
    result = await seed(settings, 300, batch_size=100)

    async with ctx.sessionmaker() as db:
        users = await db.scalar(select(func.count()).select_from(User))
        grants = await db.scalar(select(func.count()).select_from(UserRole))
        never_logged_in = await db.scalar(
            select(func.count()).select_from(UserRole).where(UserRole.user_last_login_at.is_(None))
        )
        mismatched = await db.scalar(
            select(func.count())
            .select_from(UserRole)
            .join(User, User.id == UserRole.user_id)
            .where(
                or_(
                    UserRole.user_created_at != User.created_at,
                    UserRole.user_email_normalized != User.email_normalized,
                    UserRole.user_last_login_at.is_distinct_from(User.last_login_at),
                )
            )
        )
    assert (result.users, users) == (300, 300)
    assert grants == result.role_grants
    assert grants is not None
    assert grants >= 300
    assert never_logged_in is not None
    assert 0 < never_logged_in < grants
    assert mismatched == 0


async def test_seeded_activity_feeds_the_analytics_rollups(
    settings: Settings, ctx: AppContext
) -> None:
    await seed(settings, 400, batch_size=100)

    result = await seed_activity(ctx.engine, settings, ctx.clock, 60, batch_size=50)

    async with ctx.sessionmaker() as db:
        stored = await db.scalar(select(func.count()).select_from(UserActivityDay))
        per_day = dict(
            (
                await db.execute(
                    select(UserActivityDay.day, func.count()).group_by(UserActivityDay.day)
                )
            ).all()
        )
        rollups = {r.day: r for r in (await db.execute(select(AnalyticsDay))).scalars()}
        logins = await db.scalar(select(func.sum(LoginDay.count)))
    assert result.activity_days == stored
    assert stored is not None
    assert stored > 0
    today = ctx.clock.now().date()
    assert max(rollups) == today
    # The job's DAU is the number of seeded rows of each day.
    assert all(rollups[day].dau == n for day, n in per_day.items())
    assert rollups[today].accounts > 0
    assert logins is not None
