"""The ``notifications`` event consumer: a notice per event of :data:`NOTICES`, in-app
and by email as the recipient's preferences say (security notices always by email).

Transactional: the notice, the queued email and the delivery's record commit together,
so a redelivered event never shows twice (and the inbox's ``(user_id, source_id)``
uniqueness backs that up).
"""

from __future__ import annotations

import uuid

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from atrium.config import Settings
from atrium.core.bus import Bus
from atrium.core.clock import Clock
from atrium.events.dispatcher import Consumer, EventEnvelope
from atrium.mail.service import Outbox
from atrium.models import User
from atrium.notifications.notices import (
    NOTICES,
    SECURITY,
    Notice,
    recipient,
    render,
    render_link,
)
from atrium.notifications.realtime import publish_on_commit
from atrium.notifications.service import add_notification
from atrium.profiles.preferences import preferences_of

log = structlog.get_logger(__name__)

NAME = "notifications"


def notification_consumer(settings: Settings, clock: Clock, bus: Bus) -> Consumer:
    """The consumer to register in :func:`atrium.workers.event_consumers`."""

    async def handle(event: EventEnvelope, db: AsyncSession | None) -> None:
        assert db is not None  # transactional
        notice = NOTICES.get(event.type)
        target = recipient(event)
        if notice is None or target is None:
            return
        user = await db.get(User, uuid.UUID(target))
        if user is None:  # deleted for good meanwhile: nobody to tell
            return
        await _notify(db, settings, clock, bus, notice, event, user)

    return Consumer(NAME, tuple(NOTICES), handle)


async def _notify(
    db: AsyncSession,
    settings: Settings,
    clock: Clock,
    bus: Bus,
    notice: Notice,
    event: EventEnvelope,
    user: User,
) -> None:
    channels = getattr((await preferences_of(db, user.id)).notifications, notice.category)
    title, body = render(notice, event)
    path = render_link(notice, event)
    if channels.in_app:
        read = await add_notification(
            db,
            user_id=user.id,
            category=notice.category,
            title=title,
            body=body,
            link=path,
            source_id=event.id,
            now=clock.now(),
        )
        if read is not None:
            publish_on_commit(db, bus, user.id, read)
    if notice.email is None or not (notice.category == SECURITY or channels.email):
        return
    link = settings.mail.link_base_url.rstrip("/") + path if path else None
    context = {"title": title, "body": body, "link": link}
    outbox = Outbox(db, clock, settings.mail.default_locale)
    addresses = [user.email]
    previous = event.data.get("previous_email")
    if event.type == "user.email_changed" and previous and previous != user.email:
        addresses.append(previous)  # the old address learns of the change too
    for address in addresses:
        await outbox.enqueue(
            notice.email, to=address, locale=user.locale, context=context, user_id=user.id
        )
    log.info("notice_emailed", type=event.type, event_id=str(event.id))
