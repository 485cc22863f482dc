"""``atrium seed``: fill a database with realistic users, role grants and audit events, fast.

PostgreSQL: rows are generated in batches and streamed with ``COPY`` (asyncpg
``copy_records_to_table``), one transaction per batch; when the table starts empty, the
pg_trgm GIN indexes are dropped first and built once at the end (far faster than
maintaining them row by row), then the tables are ``VACUUM (ANALYZE)``d. SQLite: batched
multi-row inserts. Seeded accounts get a random password nobody knows: they cannot log in.

Distribution (deterministic for a given ``seed``): created over the last three years;
80 % email verified; 75 % have logged in; 2 % suspended; 0.5 % soft-deleted; 5 % with the
profile verified badge; every account holds ``user``, 0.5 % ``moderator``, 0.05 %
``admin``; one ``user.registered`` audit event per account.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from atrium.config import Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, is_sqlite
from atrium.core.passwords import PasswordHasher
from atrium.models import AuditEvent, User, UserRole
from atrium.models.role import GRANT_COLUMNS
from atrium.models.user import TRIGRAM_INDEXES
from atrium.rbac.permissions import ADMIN, BUILTIN_ROLE_IDS, MODERATOR, USER

FIRST = [
    "ada",
    "alan",
    "grace",
    "linus",
    "barbara",
    "ken",
    "dennis",
    "margaret",
    "edsger",
    "donald",
    "john",
    "tim",
    "guido",
    "bjarne",
    "james",
    "anders",
    "brendan",
    "yukihiro",
    "larry",
    "rasmus",
    "frances",
    "jean",
    "radia",
    "katherine",
    "hedy",
    "sophie",
    "marie",
    "emmy",
    "lise",
    "rosalind",
    "dorothy",
    "mary",
    "annie",
    "carol",
    "shafi",
    "cynthia",
    "leslie",
    "niklaus",
    "tony",
    "robin",
    "butler",
    "fernando",
    "juan",
    "maria",
    "lucia",
    "sofia",
    "mateo",
    "liam",
    "noah",
    "olivia",
    "emma",
    "ava",
    "mia",
    "chen",
    "wei",
    "li",
    "yan",
    "hiro",
    "yuki",
    "sakura",
    "arjun",
    "priya",
    "ravi",
    "ananya",
    "omar",
    "layla",
    "youssef",
    "fatima",
    "ivan",
    "olga",
    "dmitri",
    "anya",
    "lars",
    "ingrid",
    "sven",
    "astrid",
    "pierre",
    "amelie",
    "luc",
    "chloe",
    "hans",
    "greta",
]
LAST = [
    "lovelace",
    "turing",
    "hopper",
    "torvalds",
    "liskov",
    "thompson",
    "ritchie",
    "hamilton",
    "dijkstra",
    "knuth",
    "mccarthy",
    "berners-lee",
    "van-rossum",
    "stroustrup",
    "gosling",
    "hejlsberg",
    "eich",
    "matsumoto",
    "wall",
    "lerdorf",
    "allen",
    "sammet",
    "perlman",
    "johnson",
    "lamarr",
    "wilson",
    "curie",
    "noether",
    "meitner",
    "franklin",
    "hodgkin",
    "jackson",
    "easley",
    "shaw",
    "goldwasser",
    "dwork",
    "lamport",
    "wirth",
    "hoare",
    "milner",
    "lampson",
    "corbato",
    "garcia",
    "lopez",
    "martinez",
    "rossi",
    "russo",
    "muller",
    "schmidt",
    "schneider",
    "fischer",
    "weber",
    "wang",
    "zhang",
    "liu",
    "chen",
    "yamada",
    "tanaka",
    "suzuki",
    "sato",
    "kumar",
    "sharma",
    "patel",
    "singh",
    "haddad",
    "nasser",
    "ivanov",
    "petrov",
    "sokolova",
    "larsen",
    "nielsen",
    "berg",
    "dubois",
    "moreau",
    "lefebvre",
    "bauer",
]
DOMAINS = ("example.com", "example.org", "example.net", "mail.example", "corp.example")

USER_COLUMNS = [
    "id",
    "email",
    "email_normalized",
    "password_hash",
    "full_name",
    "status",
    "username",
    "profile_verified",
    "email_verified_at",
    "created_at",
    "updated_at",
    "last_login_at",
    "deleted_at",
]
AUDIT_COLUMNS = [
    "id",
    "occurred_at",
    "actor_type",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "ip_address",
    "user_agent",
    "request_id",
    "changes",
    "details",
]


@dataclass
class SeedResult:
    users: int
    role_grants: int
    audit_events: int
    seconds: float


def _batch(
    rng: random.Random, start: int, count: int, now: datetime, password_hash: str
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    users, grants, events = [], [], []
    three_years = 3 * 365 * 86_400
    for i in range(start, start + count):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        uid = uuid.UUID(int=rng.getrandbits(128), version=4)
        email = f"{first}.{last}{i}@{DOMAINS[i % len(DOMAINS)]}"
        created = now - timedelta(seconds=rng.randrange(three_years))
        age = max(1, int((now - created).total_seconds()))
        r = rng.random()
        verified = rng.random() < 0.05
        email_verified_at = (
            created + timedelta(seconds=rng.randrange(3600)) if rng.random() < 0.8 else None
        )
        last_login = (
            created + timedelta(seconds=rng.randrange(age)) if rng.random() < 0.75 else None
        )
        users.append(
            (
                uid,
                email,
                email,
                password_hash,
                f"{first.title()} {last.title()}",
                "suspended" if r < 0.02 else "active",
                f"{first}{last}{i}",
                verified,
                email_verified_at,
                created,
                created,
                last_login,
                now - timedelta(days=rng.randrange(60)) if 0.02 <= r < 0.025 else None,
            )
        )
        keys = (created, email, last_login)  # the account's sort keys, copied into user_role
        grants.append((uid, BUILTIN_ROLE_IDS[USER], created, None, *keys))
        if r > 0.995:
            grants.append((uid, BUILTIN_ROLE_IDS[MODERATOR], created, None, *keys))
        if r > 0.9995:
            grants.append((uid, BUILTIN_ROLE_IDS[ADMIN], created, None, *keys))
        events.append(
            (
                uuid.UUID(int=rng.getrandbits(128), version=4),
                created,
                "user",
                uid,
                "user.registered",
                "user",
                str(uid),
                f"198.51.100.{i % 254 + 1}",
                "seed",
                None,
                None,
                None,
            )
        )
    return users, grants, events


async def _copy(conn: AsyncConnection, table: str, columns: Sequence[str], rows: list[Any]) -> None:
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    await driver.copy_records_to_table(table, records=rows, columns=columns)


async def seed(
    settings: Settings,
    users: int,
    *,
    batch_size: int = 20_000,
    random_seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> SeedResult:
    """Insert ``users`` accounts (plus grants and events) into ``settings``' database."""
    started = time.perf_counter()
    now = SystemClock().now()
    # One real hash shared by every seeded account (nobody knows its password).
    hasher = PasswordHasher(settings.auth)
    try:
        password_hash = await hasher.hash(secrets.token_urlsafe(24))
    finally:
        hasher.close()
    engine = create_engine(settings, statement_timeouts=False)
    sqlite = is_sqlite(settings.database_url)
    grants_total = events_total = 0
    rebuild_trigram = False
    try:
        if not sqlite:
            async with engine.begin() as conn:
                empty = (
                    await conn.execute(text("SELECT NOT EXISTS (SELECT 1 FROM user_account)"))
                ).scalar_one()
                if empty:
                    rebuild_trigram = True
                    for name in TRIGRAM_INDEXES:
                        await conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        offset = await _count_users(engine) if users else 0  # keep emails unique when seeding again
        # Seeding again continues the numbering, with a generator of its own: no clashes.
        # Synthetic data, not security: a reproducible pseudo-random generator is the point.
        rng = random.Random(f"{random_seed}:{offset}")  # noqa: S311  # nosec B311
        done = 0
        while done < users:
            count = min(batch_size, users - done)
            u, g, e = _batch(rng, offset + done, count, now, password_hash)
            async with engine.begin() as conn:
                if sqlite:
                    await conn.execute(
                        insert(User), [dict(zip(USER_COLUMNS, r, strict=True)) for r in u]
                    )
                    await conn.execute(
                        insert(UserRole),
                        [dict(zip(GRANT_COLUMNS, r, strict=True)) for r in g],
                    )
                    await conn.execute(
                        insert(AuditEvent),
                        [dict(zip(AUDIT_COLUMNS, r, strict=True)) for r in e],
                    )
                else:
                    await _copy(conn, "user_account", USER_COLUMNS, u)
                    await _copy(conn, "user_role", GRANT_COLUMNS, g)
                    await _copy(conn, "audit_event", AUDIT_COLUMNS, e)
            done += count
            grants_total += len(g)
            events_total += len(e)
            if progress:
                progress(done)
        if not sqlite:
            async with engine.connect() as conn:
                await conn.execute(text("SET maintenance_work_mem = '256MB'"))
                if rebuild_trigram:
                    for name, column in zip(
                        TRIGRAM_INDEXES, ("email", "username", "full_name"), strict=True
                    ):
                        await conn.execute(
                            text(
                                f"CREATE INDEX IF NOT EXISTS {name} ON user_account "
                                f"USING gin ({column} gin_trgm_ops)"
                            )
                        )
                await conn.commit()
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                # VACUUM as well as ANALYZE: a bulk load leaves the visibility map empty,
                # and without it index-only scans (the role filter's probes into
                # user_role) fetch every heap page; autovacuum would get there later.
                for table in ("user_account", "user_role", "audit_event"):
                    await conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    finally:
        await engine.dispose()
    return SeedResult(users, grants_total, events_total, time.perf_counter() - started)


async def _count_users(engine: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM user_account"))).scalar_one())
