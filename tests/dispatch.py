"""Running the event dispatcher with the deployment's consumers, in tests."""

from __future__ import annotations

from atrium.context import AppContext
from atrium.events.dispatcher import EventDispatcher
from atrium.workers import event_consumers


async def dispatch(ctx: AppContext) -> int:
    """Deliver every pending event to every consumer, as ``atrium worker`` would; the
    number of deliveries attempted."""
    consumers = event_consumers(ctx.settings, ctx.clock, ctx.sessionmaker, ctx.bus)
    return await EventDispatcher(ctx.sessionmaker, ctx.settings, ctx.clock, consumers).drain()
