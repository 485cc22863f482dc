"""The test harness's shared cache of compiled SQL (tests/compile_cache.py): a second
application, with an engine of its own, compiles no statement again and answers as the
first did; each backend keeps its own entries."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from atrium.config import Settings
from atrium.core.clock import FrozenClock
from atrium.main import create_app
from atrium.models import User
from tests import compile_cache
from tests.factories import signed_in


async def _sign_up_and_in(settings: Settings, email: str) -> int:
    """Register, log in (both asserted by the factories) and read the account, on an
    application and engine of its own; the status of ``/users/me``."""
    app = create_app(settings, FrozenClock())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://atrium.test") as c:
            me = await c.get("/api/v1/users/me", headers=await signed_in(c, email))
    return me.status_code


async def test_a_second_app_compiles_no_statement_again_and_answers_the_same(
    settings: Settings,
) -> None:
    first = await _sign_up_and_in(settings, "first@example.com")
    compiled = compile_cache.compilations()

    second = await _sign_up_and_in(settings, "second@example.com")

    assert first == second == 200
    assert compile_cache.compilations() == compiled  # nothing compiled again
    # Compiled once, by the first app or an earlier test of this process, into the shared
    # caches (stock per-engine caches would leave these counts at 0).
    assert compiled[0] > 10  # queries
    assert compiled[1] > 3  # the flush's INSERT and UPDATE statements


def test_entries_are_shared_by_dialects_of_one_class_and_server_version_only() -> None:
    cache = compile_cache.DialectNeutralCache(10)
    one, other, older = postgresql.dialect(), postgresql.dialect(), postgresql.dialect()
    one.server_version_info = other.server_version_info = (16, 4)
    older.server_version_info = (13, 0)
    lite = sqlite.dialect()
    key = select(User.id).where(User.email == "x")._generate_cache_key()
    assert key is not None

    cache[(one, key.key, (), False, False)] = "compiled for PostgreSQL 16"

    assert cache.get((other, key.key, (), False, False)) == "compiled for PostgreSQL 16"
    assert cache.get((older, key.key, (), False, False)) is None
    assert cache.get((lite, key.key, (), False, False)) is None
    assert cache.get((other, key.key, ("email",), False, False)) is None
