"""Start-up tasks that run once per deployment step, not once per worker:
migrations, the signing key and the first admin."""

from __future__ import annotations

import uuid
from datetime import datetime

import anyio
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium import migrate
from atrium.audit.service import record
from atrium.auth.password_policy import check_password
from atrium.config import Settings
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.core.passwords import PasswordHasher
from atrium.core.tokens import load_or_create_signing_key
from atrium.models import User, UserStatus
from atrium.rbac.permissions import BUILTIN_ROLE_IDS, SUPERADMIN, USER
from atrium.rbac.repository import RoleRepository
from atrium.users.email import normalize_email
from atrium.users.repository import UserRepository

log = structlog.get_logger(__name__)


async def ensure_admin(settings: Settings, email: str, password: str) -> tuple[User, bool]:
    """Create a superuser account, or promote the existing account with this email: the
    account holds the ``superadmin`` role (and ``user``). Recorded in the audit trail as
    a grant by the system.

    Returns the user and whether it was created. The password policy applies to a new
    account; an existing account keeps its password.

    Raises:
        InvalidEmail, WeakPassword: the email or password is not acceptable.
    """
    normalized = normalize_email(email)
    engine = create_engine(settings)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as db:
            repo = UserRepository(db)
            now = SystemClock().now()
            existing = await repo.get_by_email_key(normalized.key)
            if existing is not None:
                await _grant_superadmin(db, existing.id, now)
                return existing, False
            check_password(password, email=normalized.address, settings=settings.auth)
            hasher = PasswordHasher(settings.auth)
            try:
                password_hash = await hasher.hash(password)
            finally:
                hasher.close()
            user = User(
                id=uuid.uuid4(),
                email=normalized.address,
                email_normalized=normalized.key,
                password_hash=password_hash,
                status=UserStatus.active.value,
                # The operator chose this address: no verification email for it.
                email_verified_at=now,
                created_at=now,
                updated_at=now,
            )
            await repo.add(user)
            await _grant_superadmin(db, user.id, now)
            return user, True
    finally:
        await engine.dispose()


async def _grant_superadmin(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    roles = RoleRepository(db)
    await roles.grant_builtin(user_id, USER, now)
    gained = await roles.grant([user_id], BUILTIN_ROLE_IDS[SUPERADMIN], now, None)
    if gained:
        await record(
            db,
            "role.granted",
            at=now,
            actor_id=None,
            target_type="user",
            target_id=user_id,
            details={"role": SUPERADMIN, "via": "create-admin"},
        )


def prepare(settings: Settings) -> None:
    """Migrate (when ``database.auto_migrate``), create the signing key if absent, and
    create the admin from ``ATRIUM_ADMIN_EMAIL``/``ATRIUM_ADMIN_PASSWORD`` when set."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.database.auto_migrate:
        migrate.upgrade(settings.database_url)
    key = load_or_create_signing_key(settings)
    log.info("signing_key_ready", kid=key.kid)
    if settings.admin_email and settings.admin_password:
        user, created = anyio.run(
            ensure_admin, settings, settings.admin_email, settings.admin_password.get_secret_value()
        )
        log.info("admin_ready", user_id=str(user.id), created=created)
