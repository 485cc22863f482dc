"""LuxeWin raffles, the first application built on Atrium (docs/apps/raffles.md).

Raffles with a provably fair draw (a committed seed, a public randomness beacon, a
hash-chained public draw log), ticket purchases paid with Stripe. Mounted only when listed:
``ATRIUM_APPS='["raffles"]'``; the platform never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from fastapi import APIRouter

from atrium.apps.raffles.settings import RafflesSettings
from atrium.core.apps import AtriumApp, PageLink
from atrium.core.jobs import Job

HERE = Path(__file__).parent
# Subjects of the application's emails (templates/mail/<name>.txt and .html).
MAIL_TEMPLATES = {"receipt": "Your tickets for {title}"}


def _routers() -> Sequence[APIRouter]:
    # Imported once the permissions are registered: the routes `require` them.
    from atrium.apps.raffles import hooks
    from atrium.apps.raffles.purchases_router import router as purchases_router
    from atrium.apps.raffles.router import admin_router, public_router

    hooks.install()
    return [admin_router, public_router, purchases_router]


def _jobs() -> Sequence[Job]:
    from atrium.apps.raffles import hooks
    from atrium.apps.raffles.jobs import jobs

    hooks.install()
    return jobs()


def _pages() -> Sequence[APIRouter]:
    from atrium.apps.raffles import hooks
    from atrium.apps.raffles.pages import account, console

    hooks.install()
    return [console, account]


def _event_types() -> Sequence[Any]:
    from atrium.apps.raffles.events import EVENT_TYPES

    return EVENT_TYPES


def _notices() -> Mapping[str, Any]:
    from atrium.apps.raffles.events import NOTICES

    return NOTICES


def _commands() -> typer.Typer:
    from atrium.apps.raffles.commands import app as commands

    return commands


PERMISSIONS = {
    "raffles:manage": "Create, change, publish and cancel raffles; see their sales.",
    "raffles:draw": "Run a raffle's draw once its beacon round is available.",
    "raffles.payments:refund": "Refund a paid ticket purchase.",
}

AUDIT_ACTIONS = {
    "raffles.created": "A raffle was created (draft).",
    "raffles.updated": "A raffle was changed.",
    "raffles.published": "A raffle was published with its draw commitment.",
    "raffles.opened": "A raffle opened for purchases.",
    "raffles.closed": "A raffle closed; its ticket ledger was frozen.",
    "raffles.drawn": "A raffle's winners were drawn.",
    "raffles.cancelled": "A raffle was cancelled.",
    "raffles.purchase_refunded": "A ticket purchase was refunded.",
}

app = AtriumApp(
    name="raffles",
    routers=_routers,
    permissions=PERMISSIONS,
    audit_actions=AUDIT_ACTIONS,
    settings=RafflesSettings,
    migrations=HERE / "migrations",
    templates=HERE / "templates",
    jobs=_jobs,
    mail_templates=MAIL_TEMPLATES,
    event_types=_event_types,
    notices=_notices,
    commands=_commands,
    pages=_pages,
    console_links=(PageLink("raffles", "/admin/raffles", "Raffles", "raffles:manage"),),
    account_links=(PageLink("raffles_tickets", "/account/tickets", "My tickets"),),
    locale=HERE / "locale",
)
