"""The ``atrium`` command."""

from __future__ import annotations

import contextlib
import os
import shutil
from enum import StrEnum
from typing import Annotated

import anyio
import typer

from atrium import __version__

APP_FACTORY = "atrium.main:create_app"


class Server(StrEnum):
    """The ASGI server behind ``atrium serve`` (docs/benchmarks.md compares them)."""

    granian = "granian"
    uvicorn = "uvicorn"


app = typer.Typer(no_args_is_help=True, help="Atrium: a self-hostable user and identity backend.")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"atrium {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Atrium: a self-hostable user and identity backend."""


@app.command()
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
    from atrium.config import get_settings

    settings = get_settings()
    if workers > 1 and not reload:
        # One metrics view over every worker process (prometheus-client multiprocess mode).
        # Set before anything imports prometheus_client: a forked worker inherits the
        # parent's already-imported metric value class.
        metrics_dir = settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)

    from atrium.bootstrap import prepare
    from atrium.core.logging import configure_logging

    configure_logging(settings)
    prepare(settings)
    # Forwarding headers are the application's business (http.trusted_proxies), and the
    # application writes its own access log: both servers are told to do neither.
    if server is Server.granian:
        from granian import Granian
        from granian.constants import Interfaces, Loops
        from granian.log import LogLevels

        Granian(
            APP_FACTORY,
            address=host,
            port=port,
            interface=Interfaces.ASGI,
            factory=True,
            workers=workers,
            reload=reload,
            loop=Loops.uvloop,
            log_level=LogLevels(settings.log_level),
            log_access=False,
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


@app.command()
def migrate(
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the SQL instead of running it.")
    ] = False,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema to the latest revision."""
    from atrium import migrate as migrations
    from atrium.config import get_settings

    migrations.upgrade(get_settings().database_url, revision, sql=sql)


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True, help="The admin's email.")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            envvar="ATRIUM_ADMIN_PASSWORD",
            help="Password for a new account (an existing account is promoted and keeps its own).",
        ),
    ],
) -> None:
    """Create a superuser account, or promote an existing account."""
    from atrium import migrate as migrations
    from atrium.bootstrap import ensure_admin
    from atrium.config import get_settings
    from atrium.errors import AppError

    settings = get_settings()
    if settings.database.auto_migrate:
        migrations.upgrade(settings.database_url)
    try:
        user, created = anyio.run(ensure_admin, settings, email, password)
    except AppError as exc:
        typer.echo(f"error: {exc.code}: {exc.detail or exc.title}", err=True)
        raise typer.Exit(code=2) from exc
    typer.echo(f"{'created' if created else 'promoted'} admin {user.email} ({user.id})")


@app.command()
def worker() -> None:
    """Deliver queued email (run any number of these next to the API in production)."""
    from atrium.config import get_settings
    from atrium.core.logging import configure_logging
    from atrium.mail.commands import run_worker

    settings = get_settings()
    configure_logging(settings)
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(run_worker, settings)


mail_app = typer.Typer(no_args_is_help=True, help="Inspect and repair the email outbox.")
app.add_typer(mail_app, name="mail")


@mail_app.command("status")
def mail_status() -> None:
    """Count outbox messages by state (pending, sending, sent, failed)."""
    from atrium.config import get_settings
    from atrium.mail.commands import outbox_counts

    counts = anyio.run(outbox_counts, get_settings())
    for state, count in counts.items():
        typer.echo(f"{state:<8} {count}")


@mail_app.command("retry-failed")
def mail_retry_failed() -> None:
    """Put every failed message back in line, with a fresh attempt budget."""
    from atrium.config import get_settings
    from atrium.mail.commands import retry_failed

    count = anyio.run(retry_failed, get_settings())
    typer.echo(f"{count} failed message(s) queued again")


@app.command()
def seed(
    users: Annotated[int, typer.Option("--users", min=0, help="Accounts to create.")] = 1000,
    batch_size: Annotated[int, typer.Option(min=100, help="Rows per COPY/insert batch.")] = 20_000,
    random_seed: Annotated[int, typer.Option(help="Seed of the generator (reproducible).")] = 0,
) -> None:
    """Fill the database with realistic users, role grants and audit events (fast)."""
    from atrium import migrate as migrations
    from atrium.config import get_settings
    from atrium.seed import seed as run_seed

    settings = get_settings()
    if settings.database.auto_migrate:
        migrations.upgrade(settings.database_url)

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


@app.command("purge-deleted")
def purge_deleted() -> None:
    """Remove for good the soft-deleted accounts past accounts.deleted_retention_days."""
    from atrium import migrate as migrations
    from atrium.admin.service import purge_expired
    from atrium.config import get_settings
    from atrium.core.clock import SystemClock
    from atrium.core.db import create_engine, create_sessionmaker, unit_of_work
    from atrium.core.storage import create_storage

    settings = get_settings()
    if settings.database.auto_migrate:
        migrations.upgrade(settings.database_url)

    async def run() -> int:
        engine = create_engine(settings)
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


if __name__ == "__main__":
    app()
