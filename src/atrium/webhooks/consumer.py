"""The ``webhooks`` event consumer: one ``webhook_delivery`` row per enabled endpoint
whose event types take the event (the fan-out); :mod:`atrium.webhooks.worker` sends them.

Transactional: the rows and the consumer's delivery record commit together, and
``uq_webhook_delivery_endpoint_id`` (endpoint, event) backs that up, so an event is queued
once per endpoint even if its consumer delivery is handed over after a lost lease.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.core.clock import Clock
from atrium.events.dispatcher import Consumer, EventEnvelope, type_matches
from atrium.webhooks.repository import WebhookRepository
from atrium.webhooks.wake import wake_on_commit

NAME = "webhooks"


def webhook_consumer(clock: Clock) -> Consumer:
    """The consumer to register in :func:`atrium.workers.event_consumers`."""

    async def handle(event: EventEnvelope, db: AsyncSession | None) -> None:
        assert db is not None  # transactional
        repo = WebhookRepository(db)
        now = clock.now()
        payload = event.as_dict()
        rows = [
            {
                "endpoint_id": endpoint.id,
                "event_id": event.id,
                "event_type": event.type,
                "payload": payload,
                "now": now,
            }
            for endpoint in await repo.enabled_endpoints()
            if any(type_matches(p, event.type) for p in endpoint.event_types)
        ]
        if rows:
            await repo.queue_deliveries(rows)
            wake_on_commit(db)

    return Consumer(NAME, ("*",), handle)
