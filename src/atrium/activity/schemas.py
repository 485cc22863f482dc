"""Response bodies of activity and analytics."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class ActivityDay(BaseModel):
    """One UTC day of an account's activity (a rollup, not a log of requests)."""

    model_config = ConfigDict(from_attributes=True)

    day: date
    first_seen_at: datetime = Field(description="First authenticated request of the day (UTC).")
    last_seen_at: datetime = Field(description="Last authenticated request of the day (UTC).")
    requests: int = Field(description="Authenticated requests that day.")
    logins: int = Field(description="Successful logins that day.")
    active_sessions: int = Field(description="Distinct sessions (or API keys) that made requests.")
    ip_prefix: str | None = Field(
        description="The network of a request of that day, host part removed "
        "(IPv4 /24, IPv6 /48 by default), e.g. 203.0.113.0/24."
    )


class ActivityRead(BaseModel):
    """An account's days in the range asked, newest first. ``tracking`` false: the account
    opted out (preference ``privacy.activity_tracking``), nothing new is recorded."""

    user_id: uuid.UUID
    tracking: bool
    from_: date = Field(alias="from")
    to: date
    items: list[ActivityDay]

    model_config = ConfigDict(populate_by_name=True)


class LoginOutcomes(BaseModel):
    success: int
    failure: int


class LoginsByMethod(BaseModel):
    password: LoginOutcomes
    mfa: LoginOutcomes = Field(description="Logins completed with a second factor.")
    passkey: LoginOutcomes
    social: LoginOutcomes


class SessionsByDevice(BaseModel):
    desktop: int
    mobile: int
    tablet: int
    bot: int
    other: int


class AnalyticsBucket(BaseModel):
    """One day, ISO week or calendar month (clipped to the range). Figures are null
    where the rollup job has not computed any day of the bucket yet."""

    start: date
    end: date
    dau: float | None = Field(description="Mean daily active accounts over the bucket's days.")
    wau: int | None = Field(description="Accounts active in the 7 days ending at `end`.")
    mau: int | None = Field(description="Accounts active in the 30 days ending at `end`.")
    registrations: int
    accounts: int | None = Field(description="Accounts existing at the end of `end`.")
    verified_share: float | None = Field(description="Share (0 to 1) with a verified email.")
    mfa_adoption: float | None = Field(description="Share (0 to 1) with a second factor.")
    logins: LoginsByMethod
    sessions_by_device: SessionsByDevice = Field(description="Sessions opened in the bucket.")


class RetentionRow(BaseModel):
    """Accounts registered in the ISO week starting ``cohort_week``, and how many of them
    were active in the registration week (index 0) and each week after."""

    cohort_week: date
    size: int
    active: list[int]
    rates: list[float | None]


class AnalyticsReport(BaseModel):
    """Usage analytics over ``from``..``to`` (UTC days, inclusive), from the rollups of
    the ``analytics.rollup`` job (docs/analytics.md)."""

    from_: date = Field(alias="from")
    to: date
    interval: str
    buckets: list[AnalyticsBucket]
    retention: list[RetentionRow]

    model_config = ConfigDict(populate_by_name=True)
