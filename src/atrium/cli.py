"""The ``atrium`` command."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import socket
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import anyio
import typer

if TYPE_CHECKING:
    from collections.abc import Iterator

    from atrium.config import Settings

from atrium import __version__
from atrium.config import StartupError

APP_FACTORY = "atrium.main:create_app"
P = ParamSpec("P")
R = TypeVar("R")


class Server(StrEnum):
    """The ASGI server behind ``atrium serve`` (docs/benchmarks.md compares them)."""

    granian = "granian"
    uvicorn = "uvicorn"


app = typer.Typer(no_args_is_help=True, help="Atrium: a self-hostable user and identity backend.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"atrium {__version__}")
        raise typer.Exit()


def _fail(message: str) -> NoReturn:
    """One line on stderr, exit status 2: how every start-up mistake is reported."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Report a :class:`StartupError` of ``command`` as one line instead of a traceback."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except StartupError as exc:
            _fail(str(exc))

    return wrapper


def _settings(*, logging: bool = False) -> Settings:
    """The settings, with unknown ``ATRIUM_*`` variables reported: one warning line each
    in development and test, a refusal in production (a misspelt variable there silently
    leaves a default in place). ``logging``: the log at ``log_level`` (long-running
    commands); otherwise warnings and errors only, on stderr.

    Raises:
        StartupError: invalid settings, or unknown variables in production.
    """
    from atrium.config import Environment, get_settings, unknown_variables

    unknown = unknown_variables()
    try:
        settings = get_settings()
    except StartupError as exc:
        # A misspelt variable often explains a missing or default one: say both.
        hint = f"; unknown variables: {', '.join(unknown)}" if unknown else ""
        raise StartupError(f"{exc}{hint}") from None
    unknown = _without_app_variables(unknown, settings)
    if unknown and settings.environment is Environment.production:
        raise StartupError(
            f"unknown variables: {', '.join(unknown)}: rename or remove them "
            "(every setting is in docs/configuration.md)"
        )
    for variable in unknown:
        typer.echo(f"warning: unknown variable {variable} is ignored", err=True)
    from atrium.core.logging import configure_logging

    if logging:
        configure_logging(settings)
    else:
        # A short command prints its result on stdout; the log (structlog's default would
        # print every debug line there) goes to stderr, warnings and errors only.
        configure_logging(settings.model_copy(update={"log_level": "warning"}))
    return settings


def _without_app_variables(unknown: list[str], settings: Settings) -> list[str]:
    """``unknown`` less the variables of the listed applications' settings groups."""
    if not settings.apps:
        return unknown
    from atrium.core.apps import declared_apps, settings_variables

    try:
        known = set().union(*(settings_variables(a) for a in declared_apps(settings.apps)))
    except ValueError as exc:  # AppLoadError: said again, in one line, where the app loads
        raise StartupError(str(exc)) from None
    return [u for u in unknown if u.split(" ", 1)[0] not in known]


def mount_app_commands() -> None:
    """``atrium <name> …`` for each application of ``ATRIUM_APPS`` that declares
    commands. Settings that cannot be read or an application that cannot be loaded
    mount nothing here: the command run then reports it."""
    from atrium.config import get_settings

    try:
        listed = get_settings().apps
    except (StartupError, ValueError):
        return
    if not listed:
        return  # nothing to mount: the platform's commands start without loading apps
    from atrium.core.apps import declared_apps

    try:
        declared = declared_apps(listed)
    except (StartupError, ValueError):
        return
    for declared_app in declared:
        if declared_app.commands is not None:
            app.add_typer(declared_app.commands(), name=declared_app.name)


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` once, without ``SO_REUSEPORT``: granian and uvicorn may listen
    with ``SO_REUSEPORT``, where the kernel lets a second server share the port and splits
    the connections between the two.

    Raises:
        StartupError: the port is taken, or the address cannot be bound here.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartupError(f"--host {host!r} cannot be resolved ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # A previous run's connections in TIME_WAIT do not count as "taken".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} is already in use (another atrium serve?): stop "
                    "that server, or choose another port with --port (make serve PORT=8080)"
                ) from None
            raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def own_url(host: str, port: int) -> str:
    """The server's base URL as a local browser reaches it (``0.0.0.0`` -> ``127.0.0.1``)."""
    # "Every interface" is not an address a browser can reach; its loopback is.
    if host in ("", "0.0.0.0"):  # noqa: S104  # nosec B104
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Atrium: a self-hostable user and identity backend."""


@app.command()
@_one_line_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development).")] = False,
    server: Annotated[
        Server, typer.Option(help="HTTP server: granian (default, faster) or uvicorn.")
    ] = Server.granian,
) -> None:
    """Run the HTTP API (migrates first when database.auto_migrate is on)."""
    from atrium.config import get_settings, metrics_exposure_problem

    settings = _settings(logging=True)
    problem = metrics_exposure_problem(settings)
    if problem is not None:
        raise StartupError(problem)
    check_port_free(host, port)
    if "link_base_url" not in settings.mail.model_fields_set:
        # Emailed links lead to this server unless told otherwise (production must say).
        os.environ["ATRIUM_MAIL__LINK_BASE_URL"] = own_url(host, port)
        get_settings.cache_clear()
        settings = get_settings()
    if (workers > 1 and not reload) or settings.metrics.port is not None:
        # One metrics view over every worker process (prometheus-client multiprocess mode).
        # Set before anything imports prometheus_client: a forked worker inherits the
        # parent's already-imported metric value class.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    from atrium.bootstrap import prepare

    prepare(settings)
    with _metrics_listener(settings):
        _serve_api(settings, host, port, workers, reload, server)


@contextlib.contextmanager
def _metrics_listener(settings: Settings) -> Iterator[None]:
    """Run ``/metrics`` on ``metrics.port`` in a process of its own while the API runs."""
    if not settings.metrics.enabled or settings.metrics.port is None:
        yield
        return
    import multiprocessing

    process = multiprocessing.get_context("spawn").Process(
        target=_run_metrics_listener,
        args=(settings.metrics.host, settings.metrics.port, settings.log_level),
        name="atrium-metrics",
        daemon=True,
    )
    process.start()
    try:
        yield
    finally:
        process.terminate()
        process.join(10)


def _run_metrics_listener(host: str, port: int, log_level: str) -> None:
    import uvicorn

    uvicorn.run(
        "atrium.main:create_metrics_app",
        factory=True,
        host=host,
        port=port,
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_level=log_level,
    )


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files (RLIMIT_NOFILE) towards ``wanted``,
    never past the hard limit: every open stream holds a socket. The soft limit now."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def _serve_api(
    settings: Settings, host: str, port: int, workers: int, reload: bool, server: Server
) -> None:
    # Forwarding headers are the application's business (http.trusted_proxies), and the
    # application writes its own access log: both servers are told to do neither.
    if server is Server.granian:
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels

        raise_open_files_limit(settings.http.max_concurrent_requests + 1024)
        Granian(
            APP_FACTORY,
            backpressure=settings.http.max_concurrent_requests,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            factory=True,
            workers=workers,
            reload=reload,
            loop=Loops.uvloop,
            log_level=LogLevels(settings.log_level),
            log_access=False,
            # Granian's own lines go through Atrium's handler: JSON when the log is JSON.
            log_dictconfig={
                "loggers": {
                    name: {"handlers": [], "level": "INFO", "propagate": True}
                    for name in ("_granian", "granian.access")
                }
            },
        ).serve()
        return
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=None if reload else workers,
        reload=reload,
        proxy_headers=False,
        server_header=False,
        access_log=False,
        log_level=settings.log_level,
    )


def _check_database(settings: Settings, *, migrate: bool = True) -> None:
    """Check the data folder and the database; then upgrade the schema when
    ``database.auto_migrate`` is on (and ``migrate``), so that every command works on a
    fresh database."""
    from atrium import migrate as migrations
    from atrium.bootstrap import check_data_dir, check_database

    check_data_dir(settings)
    anyio.run(check_database, settings)
    if migrate and settings.database.auto_migrate:
        migrations.upgrade(settings.database_url, apps=settings.apps)


@app.command()
@_one_line_errors
def migrate(
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it.")
    ] = False,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema to the latest revision."""
    from atrium import migrate as migrations

    settings = _settings()
    if not sql:
        _check_database(settings, migrate=False)
    migrations.upgrade(settings.database_url, revision, sql=sql, apps=settings.apps)


@app.command("create-admin")
@_one_line_errors
def create_admin(
    email: Annotated[
        str | None,
        typer.Option(
            envvar="ATRIUM_ADMIN_EMAIL",
            show_default=False,
            help="The admin's email (asked for when omitted).",
        ),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="ATRIUM_ADMIN_PASSWORD",
            show_default=False,
            help="Password for a new account (asked for when omitted; an existing account "
            "is promoted and keeps its own).",
        ),
    ] = None,
) -> None:
    """Create a superuser account, or promote an existing account."""
    from atrium.bootstrap import admin_error, ensure_admin
    from atrium.errors import AppError

    if email is None or password is None:
        if not sys.stdin.isatty():
            missing = " and ".join(
                f"--{name} (or {var})"
                for name, var, value in (
                    ("email", "ATRIUM_ADMIN_EMAIL", email),
                    ("password", "ATRIUM_ADMIN_PASSWORD", password),
                )
                if value is None
            )
            _fail(f"no terminal to ask on: give {missing}")
        if email is None:
            email = str(typer.prompt("Email"))
        if password is None:
            password = str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    settings = _settings()
    _check_database(settings)
    try:
        user, created = anyio.run(ensure_admin, settings, email, password)
    except AppError as exc:
        _fail(admin_error(exc, ("--email", "--password")))
    typer.echo(f"{'created' if created else 'promoted'} admin {user.email} ({user.id})")


@app.command()
@_one_line_errors
def worker() -> None:
    """Deliver queued email, dispatch events and run the scheduled jobs (run any number
    of these next to the API in production)."""
    from atrium.main import load_apps
    from atrium.workers import platform_jobs, run_worker

    settings = _settings(logging=True)
    _check_database(settings)
    apps = {loaded.app.name: loaded for loaded in load_apps(settings)}
    jobs = platform_jobs(settings)
    jobs += [job for loaded in apps.values() for job in loaded.app.jobs()]
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(run_worker, settings, jobs, apps)


mail_app = typer.Typer(no_args_is_help=True, help="Inspect and repair the email outbox.")
app.add_typer(mail_app, name="mail")


@mail_app.command("status")
@_one_line_errors
def mail_status() -> None:
    """Count outbox messages by state (pending, sending, sent, failed)."""
    from atrium.mail.commands import outbox_counts

    settings = _settings()
    _check_database(settings)
    counts = anyio.run(outbox_counts, settings)
    for state, count in counts.items():
        typer.echo(f"{state:<8} {count}")


@mail_app.command("retry-failed")
@_one_line_errors
def mail_retry_failed() -> None:
    """Put every failed message back in line, with a fresh attempt budget."""
    from atrium.mail.commands import retry_failed

    settings = _settings()
    _check_database(settings)
    count = anyio.run(retry_failed, settings)
    typer.echo(f"{count} failed message(s) queued again")


jobs_app = typer.Typer(no_args_is_help=True, help="Inspect the scheduled jobs.")
app.add_typer(jobs_app, name="jobs")


@jobs_app.command("status")
@_one_line_errors
def jobs_status() -> None:
    """Each scheduled job's last run, duration, outcome, runs and failures."""
    from atrium.events.commands import format_job_runs, job_runs

    settings = _settings()
    _check_database(settings)
    for line in format_job_runs(anyio.run(job_runs, settings)):
        typer.echo(line)


events_app = typer.Typer(no_args_is_help=True, help="Inspect and repair event delivery.")
app.add_typer(events_app, name="events")


@events_app.command("status")
@_one_line_errors
def events_status() -> None:
    """Backlog, age of the oldest pending work, deliveries by consumer and state."""
    import time

    from atrium.events.commands import event_stats, format_stats

    settings = _settings()
    _check_database(settings)
    for line in format_stats(anyio.run(event_stats, settings), time.time()):
        typer.echo(line)


@events_app.command("retry-failed")
@_one_line_errors
def events_retry_failed(
    consumer: Annotated[str | None, typer.Option(help="Only this consumer's.")] = None,
) -> None:
    """Put failed deliveries back in line, with a fresh attempt budget."""
    from atrium.events.commands import retry_failed as retry

    settings = _settings()
    _check_database(settings)
    count = anyio.run(retry, settings, consumer)
    typer.echo(f"{count} failed deliver(y/ies) queued again")


@app.command()
@_one_line_errors
def seed(
    users: Annotated[int, typer.Option("--users", min=0, help="Accounts to create.")] = 1000,
    batch_size: Annotated[int, typer.Option(min=100, help="Rows per COPY/insert batch.")] = 20_000,
    random_seed: Annotated[int, typer.Option(help="Seed of the generator (reproducible).")] = 0,
    activity_days: Annotated[
        int,
        typer.Option(
            min=0,
            max=400,
            help="Then this many days of activity for every account, and the analytics "
            "rollups (docs/analytics.md).",
        ),
    ] = 0,
) -> None:
    """Fill the database with realistic users, role grants and audit events (fast)."""
    from atrium.seed import seed as run_seed

    settings = _settings()
    _check_database(settings)

    def progress(done: int) -> None:
        typer.echo(f"\r{done}/{users}", nl=False, err=True)

    result = anyio.run(
        lambda: run_seed(
            settings, users, batch_size=batch_size, random_seed=random_seed, progress=progress
        )
    )
    typer.echo("", err=True)
    typer.echo(
        f"seeded {result.users} users, {result.role_grants} role grants, "
        f"{result.audit_events} audit events in {result.seconds:.1f} s"
    )
    if activity_days:
        from atrium.activity.seeding import seed_activity
        from atrium.core.clock import SystemClock
        from atrium.core.db import create_engine

        async def with_activity() -> Any:
            engine = create_engine(settings, statement_timeouts=False)
            try:
                return await seed_activity(
                    engine,
                    settings,
                    SystemClock(),
                    activity_days,
                    random_seed=random_seed,
                    progress=lambda s: typer.echo(f"\r{s}", nl=False, err=True),
                )
            finally:
                await engine.dispose()

        seeded = anyio.run(with_activity)
        typer.echo("", err=True)
        typer.echo(
            f"seeded {seeded.activity_days} activity days, {seeded.sessions} sessions, "
            f"{seeded.mfa_factors} second factors and the analytics rollups in "
            f"{seeded.seconds:.1f} s"
        )


import_app = typer.Typer(no_args_is_help=True, help="Import accounts from other systems.")
app.add_typer(import_app, name="import")


class ImportFileFormat(StrEnum):
    """The formats of ``atrium import users`` (atrium.imports.formats.ImportFormat)."""

    csv = "csv"
    json = "json"
    auth0 = "auth0"
    keycloak = "keycloak"


@import_app.command("users")
@_one_line_errors
def import_users(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    fmt: Annotated[ImportFileFormat, typer.Option("--format", help="File format.")] = (
        ImportFileFormat.csv
    ),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate and roll back.")] = False,
) -> None:
    """Import accounts (docs/import.md): all or nothing, errors listed by line; exit 1 on any."""
    from atrium.imports.commands import import_file
    from atrium.imports.formats import ImportFormat

    settings = _settings()
    _check_database(settings)

    def progress(done: int) -> None:
        typer.echo(f"\r{done} records read", nl=False, err=True)

    outcome = anyio.run(
        lambda: import_file(
            settings, file, ImportFormat(fmt.value), dry_run=dry_run, progress=progress
        )
    )
    typer.echo("", err=True)
    for error in outcome.errors:
        where = f"line {error['line']}" if error["line"] else f"record {error['record']}"
        field = f" {error['field']}:" if error["field"] else ""
        typer.echo(f"{where}:{field} {error['message']}", err=True)
    verb = "would import" if dry_run else "imported"
    if not outcome.ok:
        typer.echo(f"{outcome.error_count} error(s) in {outcome.records} records: nothing imported")
        raise typer.Exit(code=1)
    typer.echo(
        f"{verb} {outcome.records} records: {outcome.created} created, "
        f"{outcome.updated} updated in {outcome.seconds:.1f} s"
    )
    if outcome.committed and outcome.updated and not settings.redis.url:
        typer.echo(
            "note: a running server keeps its in-process cache: it may show the changed "
            f"profiles as they were for up to {settings.profiles.cache_ttl_seconds:g} s and "
            f"apply granted roles after {settings.rbac.permission_cache_ttl_seconds:g} s",
            err=True,
        )


@app.command("purge-deleted")
@_one_line_errors
def purge_deleted() -> None:
    """Remove for good the soft-deleted accounts past accounts.deleted_retention_days."""
    from atrium.admin.service import purge_expired
    from atrium.core.clock import SystemClock
    from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
    from atrium.core.storage import create_storage

    settings = _settings()
    _check_database(settings)

    async def run() -> int:
        engine = create_engine(settings, statement_timeouts=False)
        storage = create_storage(settings)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as db:
                return await purge_expired(
                    db,
                    now=SystemClock().now(),
                    retention_days=settings.accounts.deleted_retention_days,
                    storage=storage,
                    avatar_sizes=settings.avatars.sizes,
                )
        finally:
            await storage.close()
            await engine.dispose()

    typer.echo(f"purged {anyio.run(run)} accounts")


retention_app = typer.Typer(
    no_args_is_help=True, help="Retention: remove what is kept past its period (docs/privacy.md)."
)
app.add_typer(retention_app, name="retention")


@retention_app.command("run")
@_one_line_errors
def retention_run(
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print what would be removed; change nothing."
    ),
) -> None:
    """Apply every retention policy now (the job retention.run does it every hour)."""
    from atrium.core.clock import SystemClock
    from atrium.retention.service import format_outcomes, run_from_command

    settings = _settings()
    _check_database(settings)
    outcomes = anyio.run(lambda: run_from_command(settings, SystemClock().now(), dry_run=dry_run))
    for line in format_outcomes(outcomes, dry_run=dry_run):
        typer.echo(line)


mfa_app = typer.Typer(no_args_is_help=True, help="Second factors: key rotation.")
app.add_typer(mfa_app, name="mfa")


@mfa_app.command("rotate-keys")
@_one_line_errors
def mfa_rotate_keys() -> None:
    """Re-encrypt every TOTP secret under the first key of mfa.encryption_keys."""
    from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
    from atrium.mfa.crypto import SecretBox, rotate_all

    settings = _settings()
    _check_database(settings)

    async def run() -> int:
        engine = create_engine(settings, statement_timeouts=False)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as db:
                return await rotate_all(db, SecretBox(settings))
        finally:
            await engine.dispose()

    typer.echo(f"re-encrypted {anyio.run(run)} secret(s)")


mount_app_commands()

if __name__ == "__main__":
    app()
