"""Wiring the application's pieces together once, at start-up (routers or jobs loaded):
what closing and cancelling a raffle do to its purchases, and the emails of issued
tickets, winners and cancellations."""

from __future__ import annotations

from typing import Any

from atrium.apps.raffles import drawing, notify, service, settlement


def install() -> None:
    """Register the hooks, in order (idempotent)."""
    wiring: list[tuple[list[Any], Any]] = [
        (drawing.CLOSE_HOOKS, settlement.release_on_close),
        (service.CANCEL_HOOKS, settlement.settle_on_cancel),
        (service.CANCEL_HOOKS, notify.cancelled),
        (drawing.DRAWN_HOOKS, notify.winners),
        (settlement.ISSUED_HOOKS, notify.receipt),
    ]
    for hooks, hook in wiring:
        if hook not in hooks:
            hooks.append(hook)
