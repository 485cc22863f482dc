"""Sending webhook deliveries: a :class:`atrium.core.leasing` queue over
``webhook_delivery`` (the one leased-queue mechanism; see there for claims and leases).

Each attempt is signed afresh (``webhook-timestamp`` of this attempt; the current secret
and, during a rotation's overlap, the previous one) and sent by the worker's one pooled
:class:`atrium.webhooks.sender.WebhookClient` (kept-alive connections, the address checked
and pinned on every attempt). ``webhooks.concurrency`` rows of a claimed batch are sent at
once; their outcomes, attempt log rows and the endpoints' failure counts are then written
in one transaction, each only while the lease on its row holds:

- 2xx: delivered; the endpoint's failure count goes back to 0.
- otherwise: pending again after ``backoff_base_seconds · 2^(n-1)`` capped at
  ``backoff_max_seconds``, times a random factor in ``1 ± backoff_jitter`` (about three
  days over ``max_attempts`` with the defaults); after ``max_attempts``, failed, and the
  endpoint's failure count goes up — at ``disable_after_failures`` it is disabled
  (:mod:`atrium.webhooks.notify`).

Deliveries of a disabled endpoint are failed without an attempt (``POST
.../deliveries/{id}/retry`` queues them again once it is re-enabled); test messages are
sent once, whatever the endpoint's state.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio
import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from atrium.config import Settings
from atrium.core import metrics
from atrium.core.clock import Clock
from atrium.core.db import unit_of_work
from atrium.core.leased_worker import HANDLE_BUDGET, LeasedWorker
from atrium.core.leasing import backoff_seconds
from atrium.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from atrium.social.secret_box import decrypt_secret
from atrium.webhooks.notify import disable_endpoint
from atrium.webhooks.repository import WebhookRepository
from atrium.webhooks.sender import AttemptResult, WebhookClient
from atrium.webhooks.signing import signature_headers
from atrium.webhooks.wake import on_new_deliveries

log = structlog.get_logger(__name__)

TEST_EVENT_TYPE = "webhook.test"
_RANDOM = random.SystemRandom()


class WebhookWorker(LeasedWorker):
    """Sends due webhook deliveries; any number may run on one database."""

    name = "webhooks"

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, clock: Clock
    ) -> None:
        wh = settings.webhooks
        super().__init__(
            sessionmaker,
            clock,
            lease_seconds=wh.lease_seconds,
            batch_size=wh.batch_size,
            poll_interval_seconds=wh.poll_interval_seconds,
            max_attempts=wh.max_attempts,
            concurrency=wh.concurrency,
        )
        self.app_settings = settings
        self.settings = wh
        self._endpoints: dict[uuid.UUID, WebhookEndpoint] = {}
        self._client: WebhookClient | None = None

    def queue(self, db: AsyncSession) -> WebhookRepository:
        return WebhookRepository(db)

    async def claimed(self, rows: Sequence[WebhookDelivery]) -> None:
        ids = {r.endpoint_id for r in rows}
        async with self.sessionmaker() as db:
            found = await db.execute(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(ids)))
            self._endpoints = {e.id: e for e in found.scalars()}

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones, with jitter."""
        base = backoff_seconds(
            attempts,
            base=self.settings.backoff_base_seconds,
            maximum=self.settings.backoff_max_seconds,
        )
        jitter = self.settings.backoff_jitter
        return base * _RANDOM.uniform(1 - jitter, 1 + jitter)

    def signing_secrets(self, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
        """The secrets that sign now: the current one, and the previous one during the
        overlap of a rotation (an undecryptable one, after a key was removed, is skipped)."""
        tokens = [endpoint.secret]
        until = endpoint.previous_secret_expires_at
        if endpoint.previous_secret is not None and until is not None and until > now:
            tokens.append(endpoint.previous_secret)
        secrets = [decrypt_secret(self.app_settings, t) for t in tokens]
        return [s for s in secrets if s]

    async def run(self) -> None:
        """:meth:`LeasedWorker.run`, woken by every commit that queues deliveries here."""
        unregister = on_new_deliveries(self.wake)
        try:
            await super().run()
        finally:
            unregister()
            await self.close()

    @property
    def client(self) -> WebhookClient:
        """The pooled HTTP client of this worker (opened on first use)."""
        if self._client is None:
            self._client = WebhookClient(self.settings)
        return self._client

    async def close(self) -> None:
        """Close the pooled connections (``run`` and ``drain`` do it when they end)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def drain(self, max_passes: int = 1000) -> int:
        try:
            return await super().drain(max_passes)
        finally:
            await self.close()

    async def handle(self, row: WebhookDelivery, lease_id: uuid.UUID) -> None:
        await self.handle_group([row], lease_id)

    async def handle_group(self, rows: Sequence[WebhookDelivery], lease_id: uuid.UUID) -> None:
        """Send ``rows`` concurrently (each bounded by the row budget), then record every
        outcome in one transaction."""
        outcomes: list[_Outcome] = []
        async with anyio.create_task_group() as tg:
            for row in rows:
                tg.start_soon(self._attempt, row, outcomes)
        await self._record(outcomes, lease_id)

    async def _attempt(self, row: WebhookDelivery, outcomes: list[_Outcome]) -> None:
        endpoint = self._endpoints.get(row.endpoint_id)
        is_test = row.event_type == TEST_EVENT_TYPE
        now = self.clock.now()
        if endpoint is None or (not endpoint.enabled and not is_test):
            why = "endpoint disabled" if endpoint else "endpoint gone"
            outcomes.append(_Outcome(row, endpoint, None, why, is_test))
            return
        secrets = self.signing_secrets(endpoint, now)
        if not secrets:
            outcomes.append(
                _Outcome(row, endpoint, None, "no signing secret can be decrypted", is_test)
            )
            return
        body = json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False)
        headers = signature_headers(str(row.event_id), now, body, secrets)
        try:
            with anyio.fail_after(self.lease_seconds * HANDLE_BUDGET):
                result = await self.client.post(endpoint.url, body.encode(), headers)
        except TimeoutError:
            result = AttemptResult(False, None, int(self.lease_seconds * 1000), None, "timeout")
        metrics.WEBHOOK_ATTEMPT_LATENCY.observe(result.latency_ms / 1000)
        outcomes.append(_Outcome(row, endpoint, result, None, is_test))

    async def _record(self, outcomes: Sequence[_Outcome], lease_id: uuid.UUID) -> None:
        """Write every outcome of a group in one transaction, each only while the lease
        on its row holds (a row whose lease was lost is left to its new holder)."""
        now = self.clock.now()
        counted: list[tuple[_Outcome, str]] = []
        async with unit_of_work(self.sessionmaker) as db:
            repo = WebhookRepository(db)
            for outcome in outcomes:
                row, result = outcome.row, outcome.result
                if result is None:
                    if await repo.mark_attempt_failed(
                        row.id, lease_id, error=outcome.skipped or "skipped", next_attempt_at=None
                    ):
                        counted.append((outcome, "skipped"))
                    else:
                        log.warning("webhooks_lease_lost", delivery_id=str(row.id))
                    continue
                give_up = outcome.is_test or row.attempts >= self.max_attempts
                if result.ok:
                    kept = await repo.mark_done(row.id, lease_id, delivered_at=now)
                    label = "delivered"
                else:
                    next_at = (
                        None if give_up else now + timedelta(seconds=self.backoff(row.attempts))
                    )
                    kept = await repo.mark_attempt_failed(
                        row.id, lease_id, error=result.error or "failed", next_attempt_at=next_at
                    )
                    label = "failed" if give_up else "retry"
                if not kept:
                    log.warning("webhooks_lease_lost", delivery_id=str(row.id))
                    continue
                await repo.add_attempt(
                    WebhookAttempt(
                        id=uuid.uuid4(),
                        delivery_id=row.id,
                        attempt=row.attempts,
                        attempted_at=now,
                        status_code=result.status_code,
                        latency_ms=result.latency_ms,
                        response_excerpt=result.excerpt,
                        error=(result.error or None) and result.error[:1000],
                    )
                )
                counted.append((outcome, label))
                endpoint = outcome.endpoint
                assert endpoint is not None
                if outcome.is_test:
                    pass
                elif result.ok:
                    await repo.record_success(endpoint.id)
                elif give_up:
                    failures = await repo.record_failure(endpoint.id)
                    if failures >= self.settings.disable_after_failures:
                        await disable_endpoint(
                            db, self.app_settings, self.clock, endpoint, failures
                        )
        for outcome, label in counted:
            metrics.WEBHOOK_ATTEMPTS.labels(label).inc()
            result = outcome.result
            if result is not None and not result.ok:
                log.info(
                    "webhook_attempt_failed",
                    delivery_id=str(outcome.row.id),
                    attempt=outcome.row.attempts,
                    gave_up=label == "failed",
                    error=result.error,
                )


@dataclass(frozen=True)
class _Outcome:
    """One row's attempt: its ``result``, or why it was ``skipped`` without one."""

    row: WebhookDelivery
    endpoint: WebhookEndpoint | None
    result: AttemptResult | None
    skipped: str | None
    is_test: bool
