"""The raffles application's scheduled jobs (run by ``atrium worker``, see core/jobs.py)."""

from __future__ import annotations

import structlog

from atrium.apps.raffles.beacon import beacon_for
from atrium.apps.raffles.drawing import advance
from atrium.apps.raffles.exceptions import PaymentsUnavailable
from atrium.apps.raffles.settings import RafflesSettings
from atrium.apps.raffles.settlement import Settlement
from atrium.core.apps import app_settings
from atrium.core.jobs import Job, JobContext

log = structlog.get_logger(__name__)


def _settings(ctx: JobContext) -> RafflesSettings:
    return app_settings(ctx.apps, "raffles", RafflesSettings)


async def run_schedule(ctx: JobContext) -> None:
    """Open, close and draw the raffles that are due."""
    settings = _settings(ctx)
    done = await advance(ctx.sessionmaker, beacon_for(settings), ctx.clock.now())
    if any(done.values()):
        log.info("raffles_advanced", **done)


async def run_payments(ctx: JobContext) -> None:
    """Release expired reservations, cancel their PaymentIntents, refund what is due,
    forget old idempotency keys. Without Stripe configured, only the first and last."""
    settlement = Settlement(ctx.sessionmaker, ctx.clock, _settings(ctx))
    done = {"expired": await settlement.expire()}
    try:
        done["intents_cancelled"] = await settlement.cancel_intents()
        done["refunded"] = await settlement.refund_pending()
    except PaymentsUnavailable as exc:
        log.info("raffles_payments_postponed", reason=str(exc))
    done["keys_forgotten"] = await settlement.purge_idempotency()
    if any(done.values()):
        log.info("raffles_payments_settled", **done)


def jobs() -> list[Job]:
    def interval(ctx: JobContext) -> float:
        return _settings(ctx).jobs_interval_seconds

    return [
        Job("raffles.schedule", run_schedule, interval),
        Job("raffles.payments", run_payments, interval),
    ]
