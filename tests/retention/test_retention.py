"""Retention (issue 17; GDPR art. 5(1)(e)): every policy removes what is past its period
and nothing else, in batches, on both backends; --dry-run counts without writing; 0 keeps
a kind for good; export ZIPs go with their rows; a row another transaction holds is
skipped, not waited on (PostgreSQL); ``atrium retention run``."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import event, func, select, text
from typer.testing import CliRunner

from atrium.cli import app as cli
from atrium.config import RetentionSettings, Settings, get_settings
from atrium.context import AppContext
from atrium.core.clock import FrozenClock
from atrium.models import (
    ApiKey,
    AuditEvent,
    AuthSession,
    DataExport,
    EmailToken,
    Event,
    EventDelivery,
    MfaChallenge,
    Notification,
    OAuthTicket,
    OutboxMessage,
    RefreshToken,
    TrustedDevice,
    UserActivityDay,
    WebAuthnChallenge,
    WebhookDelivery,
    WebhookEndpoint,
)
from atrium.retention.policies import POLICIES
from atrium.retention.service import apply_policy, apply_retention
from atrium.workers import platform_jobs
from tests.factories import insert_user

DAY = timedelta(days=1)


def _with(ctx: AppContext, **retention: Any) -> Settings:
    return ctx.settings.model_copy(update={"retention": RetentionSettings(**retention)})


async def _count(ctx: AppContext, model: Any) -> int:
    async with ctx.sessionmaker() as db:
        return int((await db.execute(select(func.count()).select_from(model))).scalar_one())


class Rows:
    """One account's records of every kind, each either past its period (``old``) or
    not (young, or not in the state the policy removes)."""

    def __init__(self, ctx: AppContext, user_id: uuid.UUID) -> None:
        self.ctx = ctx
        self.user_id = user_id
        self.now = ctx.clock.now()
        self.rows: list[Any] = []

    def ago(self, days: float) -> datetime:
        return self.now - timedelta(days=days)

    def session(self, *, expired_days_ago: float, revoked_days_ago: float | None = None) -> None:
        sid = uuid.uuid4()
        end = self.ago(expired_days_ago)
        self.rows.append(
            AuthSession(
                id=sid,
                user_id=self.user_id,
                created_at=end - 10 * DAY,
                last_used_at=end - DAY,
                expires_at=end,
                auth_time=end - 10 * DAY,
                revoked_at=None if revoked_days_ago is None else self.ago(revoked_days_ago),
            )
        )
        self.rows.append(
            RefreshToken(session_id=sid, token_hash=uuid.uuid4().bytes, created_at=end - DAY)
        )

    def add_every_kind(self, age: float, *, eligible: bool = True) -> None:
        """One row of each kind, ``age`` days past the moment its period starts from."""
        at = self.ago(age)
        uid = self.user_id
        if eligible:  # an audit event has no state that keeps it: only its age
            self.rows.append(AuditEvent(occurred_at=at, actor_type="user", action="user.login"))
        if eligible:
            self.session(expired_days_ago=age)
        else:  # still valid (its end is ahead), whatever its age
            self.session(expired_days_ago=-1)
        self.rows.append(
            EmailToken(
                user_id=uid,
                purpose="verify_email",
                token_hash=uuid.uuid4().bytes,
                email="ada@example.com",
                created_at=at - DAY,
                expires_at=at if eligible else self.ago(-1),
            )
        )
        self.rows.append(
            ApiKey(
                user_id=uid,
                name="ci",
                prefix=uuid.uuid4().hex[:8],
                key_hash=uuid.uuid4().bytes,
                scopes=[],
                created_at=at - DAY,
                revoked_at=at if eligible else None,
            )
        )
        self.rows.append(
            MfaChallenge(
                user_id=uid,
                token_hash=uuid.uuid4().bytes,
                client_hash=b"c",
                amr=["pwd"],
                created_at=at,
                expires_at=at if eligible else self.ago(-1),
            )
        )
        self.rows.append(
            WebAuthnChallenge(
                purpose="login",
                challenge=uuid.uuid4().bytes,
                created_at=at,
                expires_at=at if eligible else self.ago(-1),
            )
        )
        self.rows.append(
            OAuthTicket(
                kind="state",
                digest=uuid.uuid4().bytes,
                payload={},
                created_at=at,
                expires_at=at if eligible else self.ago(-1),
            )
        )
        self.rows.append(
            TrustedDevice(
                user_id=uid,
                token_hash=uuid.uuid4().bytes,
                created_at=at - DAY,
                expires_at=at if eligible else self.ago(-1),
            )
        )
        self.rows.append(
            OutboxMessage(
                template="verify_email",
                to_address="ada@example.com",
                locale="en",
                context={},
                status="sent" if eligible else "pending",
                next_attempt_at=at,
                created_at=at,
                sent_at=at if eligible else None,
            )
        )
        eid = uuid.uuid4()
        self.rows.append(
            Event(
                id=eid,
                type="user.login",
                version=1,
                occurred_at=at,
                dispatched_at=at,
                actor_type="user",
                subject_type="user",
                subject_id=str(uid),
                data={},
            )
        )
        self.rows.append(
            EventDelivery(
                event_id=eid,
                consumer="c",
                status="delivered" if eligible else "pending",
                next_attempt_at=at,
                created_at=at,
                delivered_at=at if eligible else None,
            )
        )
        self.rows.append(
            WebhookDelivery(
                endpoint_id=self.endpoint_id,
                event_id=eid,
                event_type="user.login",
                payload={},
                status="delivered" if eligible else "pending",
                next_attempt_at=at,
                created_at=at,
                delivered_at=at if eligible else None,
            )
        )
        self.rows.append(
            Notification(
                user_id=uid,
                category="security",
                title="t",
                body="b",
                created_at=at - DAY,
                read_at=at if eligible else None,
            )
        )
        if eligible:  # one row per account and day; a day has no other state
            self.rows.append(
                UserActivityDay(
                    user_id=uid,
                    day=at.date(),
                    first_seen_at=at,
                    last_seen_at=at,
                    requests=1,
                    logins=0,
                    active_sessions=1,
                )
            )
        self.rows.append(
            DataExport(
                user_id=uid,
                status="ready",
                created_at=at - DAY,
                finished_at=at - DAY,
                expires_at=at if eligible else self.ago(-1),
                storage_key=f"exports/{uid}/{uuid.uuid4()}.zip",
                size_bytes=3,
            )
        )

    async def endpoint(self) -> None:
        async with self.ctx.sessionmaker() as db:
            row = WebhookEndpoint(
                url="https://hooks.example.com/",
                event_types=["*"],
                enabled=True,
                secret=b"s" * 32,
                created_at=self.now,
                updated_at=self.now,
            )
            db.add(row)
            await db.commit()
            self.endpoint_id = row.id

    async def save(self) -> None:
        async with self.ctx.sessionmaker() as db:
            db.add_all(self.rows)
            await db.commit()
        self.rows = []


# Days past the start of each kind's period: beyond every default (max 400) vs. within all.
OLD, YOUNG = 401.0, 0.5
KINDS_BY_MODEL = {
    "audit_events": AuditEvent,
    "sessions": AuthSession,
    "email_tokens": EmailToken,
    "api_keys": ApiKey,
    "mfa_challenges": MfaChallenge,
    "webauthn_challenges": WebAuthnChallenge,
    "oauth_tickets": OAuthTicket,
    "trusted_devices": TrustedDevice,
    "outbox_messages": OutboxMessage,
    "events": Event,
    "webhook_deliveries": WebhookDelivery,
    "read_notifications": Notification,
    "activity": UserActivityDay,
    "exports": DataExport,
}


def test_every_policy_is_covered_here_and_documented() -> None:
    assert sorted(KINDS_BY_MODEL) == sorted(p.kind for p in POLICIES)
    doc = Path(__file__).parents[2].joinpath("docs", "privacy.md").read_text()
    for policy in POLICIES:
        assert f"`{policy.kind}`" in doc, policy.kind
    assert "retention.run" in {j.name for j in platform_jobs(Settings(_env_file=None))}  # type: ignore[call-arg]


async def test_each_policy_removes_what_is_past_its_period_and_nothing_else(
    ctx: AppContext, clock: FrozenClock
) -> None:
    rows = Rows(ctx, await insert_user(ctx))
    await rows.endpoint()
    rows.add_every_kind(OLD)  # one of each kind to go
    rows.add_every_kind(YOUNG)  # recent: kept
    rows.add_every_kind(OLD, eligible=False)  # old but live, unsent, unread...: kept
    await rows.save()
    for days in (364, 179, 399):  # just inside audit's, notices' and activity's periods
        extra = Rows(ctx, rows.user_id)
        extra.endpoint_id = rows.endpoint_id
        extra.add_every_kind(days)
        await extra.save()
    before = {kind: await _count(ctx, model) for kind, model in KINDS_BY_MODEL.items()}
    storage = ctx.storage
    zips = set(await _export_keys(ctx))
    for key in zips:
        await storage.put_bytes(key, b"zip", "application/zip")

    dry = await apply_retention(ctx.sessionmaker, ctx.settings, clock.now(), storage, dry_run=True)
    assert {o.policy.kind: await _count(ctx, KINDS_BY_MODEL[o.policy.kind]) for o in dry} == before
    # Rows 401, 364, 179 and 399 days past their start: the 30-day kinds lose all four;
    # audit events (365) keep 364 and 179; read notices (180) keep 179; activity (400)
    # keeps all but 401; exports go once their own expiry has passed (those four and the
    # young one, which expired half a day ago).
    expected = dict.fromkeys(KINDS_BY_MODEL, 4)
    expected.update(audit_events=2, read_notifications=3, activity=1, exports=5)
    assert {o.policy.kind: o.rows for o in dry} == expected

    done = await apply_retention(ctx.sessionmaker, ctx.settings, clock.now(), storage)
    assert {o.policy.kind: o.rows for o in done} == expected
    after = {kind: await _count(ctx, model) for kind, model in KINDS_BY_MODEL.items()}
    assert {k: before[k] - after[k] for k in before} == expected
    # The refresh tokens went with their sessions; the kept sessions keep theirs.
    assert await _count(ctx, RefreshToken) == after["sessions"]
    # Deliveries of the removed events went with them (foreign key cascade).
    assert await _count(ctx, EventDelivery) == after["events"]
    # The ZIPs of the rows left are there; those of the removed rows are gone.
    kept_keys = set(await _export_keys(ctx))
    assert len(kept_keys) == after["exports"] == 1  # the one expiring tomorrow
    assert [await storage.exists(k) for k in sorted(kept_keys)] == [True]
    assert [await storage.exists(k) for k in sorted(zips - kept_keys)] == [False] * 5

    again = await apply_retention(ctx.sessionmaker, ctx.settings, clock.now(), storage)
    assert sum(o.rows for o in again) == 0


async def _export_keys(ctx: AppContext) -> list[str]:
    async with ctx.sessionmaker() as db:
        return [k for k in (await db.execute(select(DataExport.storage_key))).scalars() if k]


async def test_rows_go_in_batches_of_the_configured_size(
    ctx: AppContext, clock: FrozenClock
) -> None:
    async with ctx.sessionmaker() as db:
        old = clock.now() - timedelta(days=400)
        db.add_all(
            AuditEvent(occurred_at=old + i * DAY / 10, actor_type="user", action="user.login")
            for i in range(10)
        )
        await db.commit()
    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM AUDIT_EVENT"):
            statements.append(statement)

    [policy] = [p for p in POLICIES if p.kind == "audit_events"]
    event.listen(ctx.engine.sync_engine, "before_cursor_execute", seen)
    try:
        outcome = await apply_policy(
            ctx.sessionmaker, _with(ctx, batch_size=3), policy, clock.now(), ctx.storage
        )
    finally:
        event.remove(ctx.engine.sync_engine, "before_cursor_execute", seen)
    assert outcome.rows == 10
    assert len(statements) == 4  # 3 + 3 + 3 + 1, each in its own transaction
    assert await _count(ctx, AuditEvent) == 0


async def test_zero_days_keeps_a_kind_for_good(ctx: AppContext, clock: FrozenClock) -> None:
    async with ctx.sessionmaker() as db:
        db.add(
            AuditEvent(
                occurred_at=clock.now() - timedelta(days=4000),
                actor_type="user",
                action="user.login",
            )
        )
        await db.commit()
    outcomes = await apply_retention(
        ctx.sessionmaker, _with(ctx, audit_event_days=0), clock.now(), ctx.storage
    )
    audit = next(o for o in outcomes if o.policy.kind == "audit_events")
    assert (audit.cutoff, audit.rows, audit.kept) == (None, 0, "for good")
    assert await _count(ctx, AuditEvent) == 1


async def test_a_row_held_by_another_transaction_is_skipped_not_waited_on(
    ctx: AppContext, clock: FrozenClock
) -> None:
    if ctx.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite has one writer)")
    async with ctx.sessionmaker() as db:
        old = clock.now() - timedelta(days=400)
        db.add_all(
            AuditEvent(occurred_at=old + i * DAY, actor_type="user", action="user.login")
            for i in range(5)
        )
        await db.commit()
    [policy] = [p for p in POLICIES if p.kind == "audit_events"]
    async with ctx.engine.connect() as holder:
        held = (
            await holder.execute(
                text("SELECT id FROM audit_event ORDER BY occurred_at LIMIT 1 FOR UPDATE")
            )
        ).scalar_one()
        with anyio.fail_after(20):
            outcome = await apply_policy(
                ctx.sessionmaker, ctx.settings, policy, clock.now(), ctx.storage
            )
        await holder.rollback()
    assert outcome.rows == 4
    async with ctx.sessionmaker() as db:
        assert [r for r in (await db.execute(select(AuditEvent.id))).scalars()] == [held]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for key in ("ATRIUM_DATABASE__URL", "ATRIUM_ADMIN_EMAIL", "ATRIUM_ADMIN_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("ATRIUM_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield tmp_path / "var"
    get_settings.cache_clear()


def test_the_command_prints_what_it_would_remove_then_removes_it(data_dir: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    old = (datetime.now(UTC) - timedelta(days=500)).strftime("%Y-%m-%d %H:%M:%S.%f")
    young = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with sqlite3.connect(data_dir / "atrium.db") as db:
        for at in (old, old, young):
            db.execute(
                "INSERT INTO audit_event (id, occurred_at, actor_type, action)"
                " VALUES (?, ?, 'user', 'user.login')",
                (uuid.uuid4().hex, at),
            )

    dry = runner.invoke(cli, ["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    lines = {line.split()[0]: line.split() for line in dry.output.splitlines()}
    assert lines["audit_events"][1:3] == ["365", "days"]
    assert lines["audit_events"][-1] == "2"
    assert lines["sessions"][-1] == "0"
    assert "would remove 2 rows in all" in dry.output
    with sqlite3.connect(data_dir / "atrium.db") as db:
        assert db.execute("SELECT count(*) FROM audit_event").fetchone() == (3,)

    done = runner.invoke(cli, ["retention", "run"])
    assert done.exit_code == 0, done.output
    assert "removed 2 rows in all" in done.output
    with sqlite3.connect(data_dir / "atrium.db") as db:
        assert db.execute("SELECT count(*) FROM audit_event").fetchone() == (1,)
