"""The header's live unread count: ``GET /account/notifications/stream``.

Server-sent events (WHATWG HTML, "Server-sent events") for the page's own session cookie
— an ``EventSource`` cannot send a bearer token, and the API's stream
(``/api/v1/users/me/notifications/stream``) needs one. It follows the same
:func:`atrium.notifications.realtime.live_notices` (Redis pub/sub across nodes,
in-process in the embedded default): on every new notice it sends ``event: unread`` with
``{"count", "label", "title"}`` — the unread count in the categories the account shows
in-app, its label in the page's language, and the new notice's title — which
``static/app.js`` writes into the header's badge. ``event: revoked`` ends the stream when
the session is revoked (the page stops listening). A visitor without a session is sent
to the sign-in page (which an ``EventSource`` treats as a failed stream and drops).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from atrium.context import AppContext, Ctx
from atrium.notifications.realtime import live_notices
from atrium.notifications.repository import NotificationRepository
from atrium.notifications.service import hidden_categories
from atrium.ui.browser import SignedIn
from atrium.ui.i18n import catalog
from atrium.ui.rendering import language_of

router = APIRouter(prefix="/account", include_in_schema=False)


async def unread_count(ctx: AppContext, user_id: uuid.UUID) -> int:
    """Unread notices of ``user_id`` in the categories it shows in-app."""
    async with ctx.sessionmaker() as db:
        hidden = await hidden_categories(db, user_id)
        return await NotificationRepository(db).unread_count(user_id, hidden)


@router.get("/notifications/stream")
async def unread_stream(request: Request, browser: SignedIn, ctx: Ctx) -> EventSourceResponse:
    """The header's unread count as server-sent events (see the module docstring)."""
    translations = catalog(language_of(request, browser))
    user_id, session_id = browser.user_id, browser.session.id

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for item in live_notices(ctx, user_id, session_id, None):
            if item.kind != "notification":
                yield ServerSentEvent(data=item.kind, event=item.kind)
                return
            count = await unread_count(ctx, user_id)
            label = translations.ngettext(
                "%(num)d unread notification", "%(num)d unread notifications", count
            ) % {"num": count}
            title = str(json.loads(item.data).get("title", ""))
            data = {"count": count, "label": label, "title": title}
            yield ServerSentEvent(data=json.dumps(data), event="unread", id=item.id)

    return EventSourceResponse(
        events(),
        ping=ctx.settings.realtime.heartbeat_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
