"""Disabling an endpoint after ``webhooks.disable_after_failures`` consecutive deliveries
failed for good: audited (``webhook.disabled``), counted
(``atrium_webhook_endpoints_disabled_total``) and told to every holder of
``webhooks:manage`` — in-app and by email, as each holder's preferences for the
``account`` category say."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.audit.service import record
from atrium.config import Settings
from atrium.core import metrics
from atrium.core.clock import Clock
from atrium.mail.service import Outbox
from atrium.models import User, UserRole, WebhookEndpoint
from atrium.notifications.service import add_notification
from atrium.profiles.preferences import preferences_of
from atrium.rbac.repository import RoleRepository
from atrium.webhooks.repository import WebhookRepository

log = structlog.get_logger(__name__)

PERMISSION = "webhooks:manage"
CATEGORY = "account"
LINK = "/admin"


async def managers(db: AsyncSession) -> list[User]:
    """Active accounts holding ``webhooks:manage`` through any of their roles."""
    graph = await RoleRepository(db).load_graph()
    role_ids = [
        node.id for name, node in graph.roles.items() if PERMISSION in graph.permissions_of([name])
    ]
    if not role_ids:
        return []
    query = (
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role_id.in_(role_ids), User.status == "active", User.deleted_at.is_(None))
        .distinct()
    )
    return list((await db.execute(query)).scalars())


async def disable_endpoint(
    db: AsyncSession, settings: Settings, clock: Clock, endpoint: WebhookEndpoint, failures: int
) -> bool:
    """Disable ``endpoint`` in ``db``'s unit of work and tell its managers; False when it
    was disabled already."""
    now: datetime = clock.now()
    reason = f"{failures} consecutive deliveries failed"
    if not await WebhookRepository(db).disable(endpoint.id, now, reason):
        return False
    await record(
        db,
        "webhook.disabled",
        at=now,
        actor_id=None,
        target_type="webhook",
        target_id=endpoint.id,
        details={"url": endpoint.url, "consecutive_failures": failures},
    )
    title = "A webhook endpoint was disabled"
    body = (
        f"{endpoint.url} failed {failures} deliveries in a row and no longer receives "
        "events. Fix the receiver, then re-enable the endpoint and retry its failed deliveries."
    )
    source = uuid.uuid5(endpoint.id, f"disabled:{now.isoformat()}")
    outbox = Outbox(db, clock, settings.mail.default_locale)
    link = settings.mail.link_base_url.rstrip("/") + LINK
    for user in await managers(db):
        channels = getattr((await preferences_of(db, user.id)).notifications, CATEGORY)
        if channels.in_app:
            await add_notification(
                db,
                user_id=user.id,
                category=CATEGORY,
                title=title,
                body=body,
                link=LINK,
                source_id=source,
                now=now,
            )
        if channels.email:
            await outbox.enqueue(
                "notification",
                to=user.email,
                locale=user.locale,
                context={"title": title, "body": body, "link": link},
                user_id=user.id,
            )
    metrics.WEBHOOK_ENDPOINTS_DISABLED.inc()
    log.warning("webhook_endpoint_disabled", endpoint_id=str(endpoint.id), failures=failures)
    return True
