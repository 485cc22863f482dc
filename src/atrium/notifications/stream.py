"""The live routes: server-sent events and WebSocket over :func:`live_notices`.

SSE (WHATWG HTML, "Server-sent events"): each notice is an ``event: notification`` with
its ``id:`` (the stream position) and the notice as JSON ``data:``; a comment line every
``realtime.heartbeat_seconds``; a reconnecting client sends ``Last-Event-ID`` and gets the
notices it missed first. When the stream's session is revoked an ``event: revoked`` is
sent and the stream closes.

WebSocket (RFC 6455): authenticated by the first message ``{"type": "auth",
"access_token": "…"}`` or by a ``bearer.<access token>`` entry in
``Sec-WebSocket-Protocol`` (the server answers with the ``atrium.notifications.v1``
subprotocol when the client offers it) — never by a token in the URL, which would end up
in access logs. Messages are JSON: ``{"type": "notification", "id", "notification"}``,
``{"type": "ping"}``; close codes 4401 (no or bad token), 4403 (session revoked), 4409
(too far behind: reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, WebSocket, WebSocketDisconnect
from sse_starlette import EventSourceResponse, ServerSentEvent

from atrium.auth.dependencies import CurrentPrincipal
from atrium.auth.principal import Principal, principal_store
from atrium.context import AppContext, Ctx
from atrium.core.pagination import InvalidCursor
from atrium.core.tokens import TokenError
from atrium.errors import AppError, InvalidToken, NotAuthenticated, problem_responses
from atrium.notifications.realtime import Live, live_notices, parse_stream_id

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/users/me/notifications", tags=["notifications"])

SUBPROTOCOL = "atrium.notifications.v1"
BEARER_PREFIX = "bearer."
SSE_DOC: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A stream of server-sent events (`text/event-stream`): `event: "
        "notification` with `id:` and the notice as JSON `data:`; `event: revoked` before "
        "the stream closes when its session is revoked.",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'id: eyJrIjoi...\nevent: notification\ndata: {"id": "…", '
                '"category": "security", "title": "Your password was changed", …}\n\n',
            }
        },
    }
}


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={**SSE_DOC, **problem_responses(NotAuthenticated, InvalidToken, InvalidCursor)},
)
async def stream(
    principal: CurrentPrincipal,
    ctx: Ctx,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=512)] = None,
) -> EventSourceResponse:
    """Live notices as server-sent events; `Last-Event-ID` replays the missed ones."""
    if last_event_id:
        parse_stream_id(last_event_id)  # 400 before the stream starts

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for item in live_notices(ctx, principal.user_id, principal.session_id, last_event_id):
            if item.kind == "notification":
                yield ServerSentEvent(data=item.data, event="notification", id=item.id)
            else:
                yield ServerSentEvent(data=item.kind, event=item.kind)
                return

    return EventSourceResponse(
        events(),
        ping=ctx.settings.realtime.heartbeat_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def authenticate(ctx: AppContext, token: str) -> Principal:
    """The principal of a bearer access token.

    Raises:
        InvalidToken: the token is invalid, expired or its session revoked.
    """
    now = ctx.clock.now()
    try:
        claims = ctx.tokens.verify(token, now=now)
    except TokenError as exc:
        raise InvalidToken("The access token is invalid or expired.") from exc
    return await principal_store(ctx).resolve(claims, now)


def _offered_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The token in ``Sec-WebSocket-Protocol`` (if any) and the subprotocol to answer."""
    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    token = next((p[len(BEARER_PREFIX) :] for p in offered if p.startswith(BEARER_PREFIX)), None)
    return token, SUBPROTOCOL if SUBPROTOCOL in offered else None


async def _first_message_token(websocket: WebSocket, wait_seconds: float) -> str | None:
    try:
        async with asyncio.timeout(wait_seconds):
            first: Any = await websocket.receive_json()
    except (TimeoutError, ValueError, KeyError):
        return None
    if isinstance(first, dict) and first.get("type") == "auth":
        token = first.get("access_token")
        return token if isinstance(token, str) and token else None
    return None


@router.websocket("/ws")
async def websocket_stream(websocket: WebSocket) -> None:
    """Live notices over a WebSocket (see the module docstring for the protocol)."""
    ctx: AppContext = websocket.app.state.ctx
    token, subprotocol = _offered_token(websocket)
    await websocket.accept(subprotocol=subprotocol)
    if token is None:
        token = await _first_message_token(websocket, ctx.settings.realtime.ws_auth_timeout_seconds)
    try:
        if token is None:
            raise NotAuthenticated("A bearer access token is required.")
        principal = await authenticate(ctx, token)
    except AppError as exc:
        await websocket.close(code=4401, reason=exc.code)
        return
    await websocket.send_json({"type": "ready"})
    with contextlib.suppress(WebSocketDisconnect):
        await _pump(websocket, ctx, principal)


async def _pump(websocket: WebSocket, ctx: AppContext, principal: Principal) -> None:
    heartbeat = ctx.settings.realtime.heartbeat_seconds
    queue: asyncio.Queue[Live] = asyncio.Queue()

    async def produce() -> None:
        async for item in live_notices(ctx, principal.user_id, principal.session_id, None):
            await queue.put(item)

    async def watch_client() -> None:
        while True:  # a client's messages are ignored; a close ends the stream
            if (await websocket.receive())["type"] == "websocket.disconnect":
                return

    producer = asyncio.create_task(produce())
    watcher = asyncio.create_task(watch_client())
    try:
        while True:
            getter = asyncio.create_task(queue.get())
            done, _ = await asyncio.wait(
                {getter, watcher, producer}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
            if getter not in done:
                getter.cancel()
                if watcher in done or producer in done:
                    return
                await websocket.send_json({"type": "ping"})
                continue
            item = getter.result()
            if item.kind == "notification":
                notice = json.loads(item.data)
                await websocket.send_json(
                    {"type": "notification", "id": item.id, "notification": notice}
                )
                continue
            code = 4403 if item.kind == "revoked" else 4409
            await websocket.close(code=code, reason=item.kind)
            return
    finally:
        for task in (producer, watcher):
            task.cancel()
        await asyncio.gather(producer, watcher, return_exceptions=True)
