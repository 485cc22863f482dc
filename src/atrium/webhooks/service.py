"""The rules of webhook administration: endpoints, secrets, the delivery log.

Every change is audited (``webhook.*`` actions) in the request's unit of work. URLs are
checked for form and literal addresses here (:func:`check_url`, with
:func:`atrium.core.ssrf.parse_url`); the host's addresses are checked again at every
attempt, when it is resolved.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.config import WebhookSettings
from atrium.context import AppContext
from atrium.core.ssrf import UrlRefused, parse_url
from atrium.events.catalogue import CATALOGUE
from atrium.models import WebhookDelivery, WebhookEndpoint
from atrium.social.secret_box import encrypt_secret
from atrium.webhooks.exceptions import (
    DeliveryInProgress,
    UnknownEventType,
    WebhookDeliveryNotFound,
    WebhookLimitReached,
    WebhookNotFound,
    WebhookUrlRefused,
)
from atrium.webhooks.repository import WebhookRepository
from atrium.webhooks.schemas import (
    AttemptRead,
    DeliveryRead,
    TestResult,
    WebhookCreate,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
)
from atrium.webhooks.signing import new_secret
from atrium.webhooks.wake import wake_on_commit
from atrium.webhooks.worker import TEST_EVENT_TYPE


def check_event_types(types: list[str]) -> list[str]:
    """``types`` without duplicates, each a catalogue name, ``*`` or ``<prefix>.*`` matching
    at least one catalogue name.

    Raises:
        UnknownEventType: 422, naming the unknown ones.
    """
    out = list(dict.fromkeys(t.strip() for t in types))
    unknown = []
    for t in out:
        if t == "*" or t in CATALOGUE:
            continue
        if t.endswith(".*") and any(name.startswith(t[:-1]) for name in CATALOGUE):
            continue
        unknown.append(t)
    if unknown:
        raise UnknownEventType(
            f"Unknown event types: {', '.join(unknown)}.",
            errors=[
                {"loc": ["body", "event_types"], "type": "unknown_event_type", "msg": t}
                for t in unknown
            ],
        )
    return out


def endpoint_read(endpoint: WebhookEndpoint) -> WebhookRead:
    return WebhookRead.model_validate(endpoint)


class WebhookService:
    def __init__(self, db: AsyncSession, ctx: AppContext) -> None:
        self.db = db
        self.ctx = ctx
        self.settings = ctx.settings.webhooks
        self.repo = WebhookRepository(db)

    def _now(self) -> datetime:
        return self.ctx.clock.now()

    async def _get(self, endpoint_id: uuid.UUID, *, lock: bool = False) -> WebhookEndpoint:
        endpoint = await self.repo.endpoint(endpoint_id, lock=lock)
        if endpoint is None:
            raise WebhookNotFound("No such webhook endpoint.")
        return endpoint

    async def _audit(
        self, action: str, actor_id: uuid.UUID, endpoint: WebhookEndpoint, **details: Any
    ) -> None:
        await record(
            self.db,
            action,
            at=self._now(),
            actor_id=actor_id,
            target_type="webhook",
            target_id=endpoint.id,
            details={"url": endpoint.url, **details},
        )

    async def create(self, actor_id: uuid.UUID, body: WebhookCreate) -> WebhookWithSecret:
        """Add an endpoint; the answer carries its signing secret, shown this once.

        Raises:
            WebhookUrlRefused: 422. UnknownEventType: 422.
            WebhookLimitReached: 409, ``webhooks.max_endpoints`` exist.
            SecretKeyMissing: 409, production without ``social.secret_keys``.
        """
        check_url(body.url, self.settings)
        types = check_event_types(body.event_types)
        if await self.repo.count_endpoints() >= self.settings.max_endpoints:
            raise WebhookLimitReached(
                f"At most {self.settings.max_endpoints} webhook endpoints; delete one."
            )
        now = self._now()
        secret = new_secret()
        endpoint = WebhookEndpoint(
            id=uuid.uuid4(),
            url=body.url,
            description=body.description,
            event_types=types,
            enabled=body.enabled,
            secret=encrypt_secret(self.ctx.settings, secret),
            consecutive_failures=0,
            created_by=actor_id,
            created_at=now,
            updated_at=now,
        )
        self.db.add(endpoint)
        await self.db.flush()
        await self._audit(
            "webhook.created", actor_id, endpoint, event_types=types, enabled=body.enabled
        )
        return WebhookWithSecret(**endpoint_read(endpoint).model_dump(), secret=secret)

    async def list_all(self) -> list[WebhookRead]:
        """Every endpoint, oldest first."""
        return [endpoint_read(e) for e in await self.repo.endpoints()]

    async def get(self, endpoint_id: uuid.UUID) -> WebhookRead:
        """Raises WebhookNotFound (404)."""
        return endpoint_read(await self._get(endpoint_id))

    async def update(
        self, actor_id: uuid.UUID, endpoint_id: uuid.UUID, body: WebhookUpdate
    ) -> WebhookRead:
        """Change the given fields; audited with the values before and after.

        Raises:
            WebhookNotFound: 404. WebhookUrlRefused: 422. UnknownEventType: 422.
        """
        endpoint = await self._get(endpoint_id, lock=True)
        before = endpoint_read(endpoint).model_dump(mode="json")
        changes = body.model_dump(exclude_unset=True)
        if body.url is not None:
            check_url(body.url, self.settings)
            endpoint.url = body.url
        if body.event_types is not None:
            endpoint.event_types = check_event_types(body.event_types)
        if "description" in changes:
            endpoint.description = body.description
        if body.enabled is not None and body.enabled != endpoint.enabled:
            endpoint.enabled = body.enabled
            if body.enabled:
                endpoint.consecutive_failures = 0
                endpoint.disabled_reason = None
                endpoint.disabled_at = None
        endpoint.updated_at = self._now()
        await self.db.flush()
        after = endpoint_read(endpoint).model_dump(mode="json")
        await record(
            self.db,
            "webhook.updated",
            at=self._now(),
            actor_id=actor_id,
            target_type="webhook",
            target_id=endpoint.id,
            before={k: before[k] for k in changes},
            after={k: after[k] for k in changes},
        )
        return endpoint_read(endpoint)

    async def delete(self, actor_id: uuid.UUID, endpoint_id: uuid.UUID) -> None:
        """Remove an endpoint with its deliveries and their log. Raises WebhookNotFound."""
        endpoint = await self._get(endpoint_id, lock=True)
        await self._audit("webhook.deleted", actor_id, endpoint)
        await self.repo.delete_endpoint(endpoint.id)

    async def rotate_secret(self, actor_id: uuid.UUID, endpoint_id: uuid.UUID) -> WebhookWithSecret:
        """A new signing secret, shown this once; the current one keeps signing (next to
        the new one) for ``webhooks.rotation_overlap_seconds``. Raises WebhookNotFound."""
        endpoint = await self._get(endpoint_id, lock=True)
        now = self._now()
        secret = new_secret()
        overlap = self.settings.rotation_overlap_seconds
        endpoint.previous_secret = endpoint.secret if overlap else None
        endpoint.previous_secret_expires_at = now + timedelta(seconds=overlap) if overlap else None
        endpoint.secret = encrypt_secret(self.ctx.settings, secret)
        endpoint.updated_at = now
        await self.db.flush()
        until = endpoint.previous_secret_expires_at
        await self._audit(
            "webhook.secret_rotated",
            actor_id,
            endpoint,
            previous_signs_until=until.isoformat() if until else None,
        )
        return WebhookWithSecret(**endpoint_read(endpoint).model_dump(), secret=secret)

    async def deliveries(
        self, endpoint_id: uuid.UUID, *, limit: int, before: datetime | None
    ) -> list[DeliveryRead]:
        """The delivery log, newest first. Raises WebhookNotFound (404)."""
        await self._get(endpoint_id)
        rows = await self.repo.deliveries(endpoint_id, limit=limit, before=before)
        attempts = await self.repo.attempts_of(r.id for r in rows)
        return [_delivery_read(r, attempts[r.id]) for r in rows]

    async def retry(
        self, actor_id: uuid.UUID, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
    ) -> DeliveryRead:
        """Queue a delivered or failed delivery again, due now, with a fresh budget of
        attempts (re-signed when sent).

        Raises:
            WebhookNotFound, WebhookDeliveryNotFound: 404.
            DeliveryInProgress: 409, it is pending or being attempted.
        """
        endpoint = await self._get(endpoint_id)
        row = await self.repo.delivery(endpoint_id, delivery_id)
        if row is None:
            raise WebhookDeliveryNotFound("No such delivery of this endpoint.")
        if not await self.repo.requeue(row.id, self._now()):
            raise DeliveryInProgress("The delivery is already pending or being attempted.")
        await self.db.refresh(row)
        await self._audit("webhook.delivery_retried", actor_id, endpoint, delivery_id=str(row.id))
        wake_on_commit(self.db)
        attempts = await self.repo.attempts_of([row.id])
        return _delivery_read(row, attempts[row.id])

    async def test(self, actor_id: uuid.UUID, endpoint_id: uuid.UUID) -> TestResult:
        """Queue a ``webhook.test`` message for the endpoint (even a disabled one); its
        outcome appears in the delivery log. Raises WebhookNotFound (404)."""
        endpoint = await self._get(endpoint_id)
        now = self._now()
        message_id = uuid.uuid4()
        payload = {
            "id": str(message_id),
            "type": TEST_EVENT_TYPE,
            "version": 1,
            "occurred_at": now.isoformat(),
            "actor": {"type": "user", "id": str(actor_id)},
            "subject": {"type": "webhook", "id": str(endpoint.id)},
            "data": {},
        }
        await self.repo.queue_deliveries(
            [
                {
                    "endpoint_id": endpoint.id,
                    "event_id": message_id,
                    "event_type": TEST_EVENT_TYPE,
                    "payload": payload,
                    "now": now,
                }
            ]
        )
        row = await self.repo.delivery_of_event(endpoint.id, message_id)
        await self._audit("webhook.tested", actor_id, endpoint, delivery_id=str(row.id))
        wake_on_commit(self.db)
        return TestResult(delivery_id=row.id)


def _delivery_read(row: WebhookDelivery, attempts: list[Any]) -> DeliveryRead:
    return DeliveryRead(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        last_error=row.last_error,
        attempt_log=[AttemptRead.model_validate(a) for a in attempts],
    )


def check_url(url: str, settings: WebhookSettings) -> None:
    """Check an endpoint's URL for form and literal addresses (no resolution: the sender
    resolves and checks before each attempt).

    Raises:
        WebhookUrlRefused: 422, with the reason.
    """
    try:
        parse_url(url, settings)
    except UrlRefused as exc:
        raise WebhookUrlRefused(exc.detail) from None
