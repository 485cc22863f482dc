"""Start-up tasks that run once per deployment step, not once per worker:
migrations, the signing key and the first admin."""

from __future__ import annotations

import errno
import socket
import sqlite3
import tempfile
import uuid
from datetime import datetime

import anyio
import structlog
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncSession

from atrium import migrate
from atrium.audit.service import record
from atrium.config import Settings, StartupError, env_name
from atrium.core.clock import SystemClock
from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
from atrium.core.passwords import PasswordHasher
from atrium.core.tokens import load_or_create_signing_key, load_verification_keys
from atrium.errors import AppError
from atrium.events.service import emit
from atrium.models import User
from atrium.models.role import BUILTIN_ROLE_IDS, SUPERADMIN, USER
from atrium.users.accounts import create_account
from atrium.users.email import normalize_email
from atrium.users.grants import grant_builtin_role, grant_role
from atrium.users.password_policy import check_password
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
            check_password(
                password, email=normalized.address, settings=settings.auth, field="password"
            )
            hasher = PasswordHasher(settings.auth)
            try:
                password_hash = await hasher.hash(password)
            finally:
                hasher.close()
            # The operator chose this address: no verification email for it.
            user = await create_account(db, normalized, password_hash, now, email_verified_at=now)
            await emit(
                db,
                "user.created",
                subject=user.id,
                data={"email": user.email, "via": "bootstrap"},
                at=now,
            )
            await _grant_superadmin(db, user.id, now)
            return user, True
    finally:
        await engine.dispose()


async def _grant_superadmin(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    await grant_builtin_role(db, user_id, USER, now)
    gained = await grant_role(db, [user_id], BUILTIN_ROLE_IDS[SUPERADMIN], now, None)
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
        await emit(db, "role.granted", subject=user_id, data={"role": SUPERADMIN}, at=now)


def check_data_dir(settings: Settings) -> None:
    """Create ``data_dir`` if needed and make sure Atrium can write in it.

    Raises:
        StartupError: the folder cannot be created or written.
    """
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise StartupError(
            f"{env_name('data_dir')}={str(path)!r} is not a writable folder ({reason}): "
            "point it at a folder this user can write, or fix its permissions"
        ) from None


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (SQLAlchemy's ``orig``, ``__cause__``, ``__context__``)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]
    return seen


def describe_database_error(exc: BaseException, settings: Settings) -> str:
    """One line saying why the database of ``settings`` cannot be used, and what to do.
    The password of the URL is never included."""
    variable = env_name("database", "url")
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return (
            f"cannot open the SQLite database {url.database} ({_reason(exc)}): make its "
            f"folder writable, or set {env_name('data_dir')} or {variable}"
        )
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    for cause in _causes(exc):
        name = type(cause).__name__
        if isinstance(cause, socket.gaierror):
            return (
                f"the database host {url.host!r} of {variable} cannot be resolved "
                f"({cause.strerror}): fix the host name"
            )
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return (
                f"nothing accepts connections at {where} ({variable}): start PostgreSQL "
                "there, or fix the host and port"
            )
        if isinstance(cause, TimeoutError):
            return (
                f"no answer from PostgreSQL at {where} ({variable}) within "
                f"{settings.database.connect_timeout_seconds:g} s: check the address and "
                f"the network, or raise {env_name('database', 'connect_timeout_seconds')}"
            )
        if name == "InvalidCatalogNameError":
            return (
                f"the database {url.database!r} does not exist at {where} ({variable}): "
                f"create it (createdb -h {url.host or 'localhost'} -p {url.port or 5432} "
                f"{url.database}) or fix the URL"
            )
        if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
            return (
                f"PostgreSQL at {where} refused the user {url.username!r} ({variable}): "
                "check the user name and password"
            )
        if isinstance(cause, OSError) and cause.strerror:
            return f"cannot reach PostgreSQL at {where} ({variable}): {cause.strerror}"
    return f"cannot use the database of {variable} at {where}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, OSError | sqlite3.Error) and str(cause):
            return str(cause).splitlines()[0]
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


async def check_database(settings: Settings) -> None:
    """Open one connection to the configured database and run ``SELECT 1``.

    Raises:
        StartupError: the database cannot be reached or used (see
            :func:`describe_database_error`).
    """
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line for the operator
        raise StartupError(describe_database_error(exc, settings)) from None
    finally:
        await engine.dispose()


def prepare(settings: Settings) -> None:
    """Check the data folder, load or create the signing key, check the database, migrate
    (when ``database.auto_migrate``), and create the admin from
    ``ATRIUM_ADMIN_EMAIL``/``ATRIUM_ADMIN_PASSWORD`` when set.

    Raises:
        StartupError: any of these steps cannot be done; the message is one line.
    """
    check_data_dir(settings)
    try:
        key = load_or_create_signing_key(settings)
        load_verification_keys(settings)
    except ValueError as exc:  # the message names the variable and the file
        raise StartupError(str(exc).splitlines()[0]) from None
    log.info("signing_key_ready", kid=key.kid)
    anyio.run(check_database, settings)
    if settings.database.auto_migrate:
        migrate.upgrade(settings.database_url, apps=settings.apps)
    if settings.admin_email and settings.admin_password:
        try:
            user, created = anyio.run(
                ensure_admin,
                settings,
                settings.admin_email,
                settings.admin_password.get_secret_value(),
            )
        except AppError as exc:
            raise StartupError(admin_error(exc)) from None
        log.info("admin_ready", user_id=str(user.id), created=created)


def admin_error(
    exc: AppError, sources: tuple[str, str] = ("ATRIUM_ADMIN_EMAIL", "ATRIUM_ADMIN_PASSWORD")
) -> str:
    """One line for a refused admin email or password, naming where it came from:
    ``sources`` is where the email and the password were given."""
    reasons = [str(e.get("msg")) for e in exc.errors or [] if e.get("msg")]
    what = "; ".join(reasons) or exc.detail or exc.title
    source = sources[0] if exc.code == "invalid_email" else sources[1]
    return f"{source} is refused ({exc.code}): {what}"
