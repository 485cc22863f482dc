"""Activity of accounts as daily rollups, and the analytics rollups computed from them.

Nothing here is a log of requests: one row per account and day (``user_activity_day``)
counts what the account did that day, written by the in-process buffer's periodic flush
(:mod:`atrium.core.activity`); the other tables are aggregates without account ids,
maintained by the ``analytics.rollup`` job (:mod:`atrium.activity.rollups`).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from atrium.models.base import Base


class UserActivityDay(Base):
    """One account's activity on one UTC day: first and last request seen (UTC),
    authenticated requests, successful logins, distinct sessions that made requests,
    and the network the last request came from, truncated (IPv4 /24, IPv6 /48 by
    default: ``activity.ipv4_prefix``/``ipv6_prefix``), never the full address.

    Accounts that opted out of non-essential tracking (preference
    ``privacy.activity_tracking``) get no rows. Kept ``activity.retention_days``.
    """

    __tablename__ = "user_activity_day"
    # DAU/WAU/MAU count distinct accounts over a range of days: an index-only scan of
    # (day, user_id). Retention deletes by day through the same index.
    __table_args__ = (Index("ix_user_activity_day_day_user_id", "day", "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    requests: Mapped[int] = mapped_column(Integer, default=0)
    logins: Mapped[int] = mapped_column(Integer, default=0)
    active_sessions: Mapped[int] = mapped_column(Integer, default=0)
    ip_prefix: Mapped[str | None] = mapped_column(String(64))


class LoginDay(Base):
    """Login attempts of one UTC day by method (``password``, ``mfa``, ``passkey``,
    ``social``) and outcome (``success``, ``failure``): counts only, no account."""

    __tablename__ = "login_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    method: Mapped[str] = mapped_column(String(16), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)


class AnalyticsDay(Base):
    """The figures of one UTC day, as the ``analytics.rollup`` job computed them:
    active accounts that day (``dau``), over the 7 and 30 days ending that day (``wau``,
    ``mau``), accounts registered that day, and at the day's end the accounts that exist,
    those with a verified email and those with a second factor."""

    __tablename__ = "analytics_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    dau: Mapped[int] = mapped_column(Integer)
    wau: Mapped[int] = mapped_column(Integer)
    mau: Mapped[int] = mapped_column(Integer)
    registrations: Mapped[int] = mapped_column(Integer)
    accounts: Mapped[int] = mapped_column(Integer)
    verified: Mapped[int] = mapped_column(Integer)
    mfa_accounts: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime]


class SessionDeviceDay(Base):
    """Sessions opened on one UTC day by device type (``desktop``, ``mobile``,
    ``tablet``, ``bot``, ``other``), read from their user agents."""

    __tablename__ = "session_device_day"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    device_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    sessions: Mapped[int] = mapped_column(Integer)


class RetentionCohort(Base):
    """Weekly retention: of the accounts registered in the ISO week starting
    ``cohort_week`` (a Monday; ``cohort_size`` of them), how many were active in the
    week ``week_offset`` weeks later (0 = the registration week)."""

    __tablename__ = "retention_cohort"

    cohort_week: Mapped[date] = mapped_column(Date, primary_key=True)
    week_offset: Mapped[int] = mapped_column(Integer, primary_key=True)
    cohort_size: Mapped[int] = mapped_column(Integer)
    active: Mapped[int] = mapped_column(Integer)
