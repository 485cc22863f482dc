"""Where a purchase holds the raffle row's lock: every purchase of a raffle updates that
row (its counters), so purchases queue on its lock. The reservation's UPDATE of the row is
the last statement before the commit, so the lock is held for one round trip and no
statement of the purchase runs while the others wait (docs/benchmarks.md, "Raffles")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from atrium.context import AppContext
from tests.apps.raffles.conftest import buy, create_raffle, verified_buyer
from tests.apps.raffles.fake_stripe import FakeStripe
from tests.factories import signed_in_as


@pytest.fixture
def sql_and_commits(ctx: AppContext) -> Iterator[list[str]]:
    """Every statement and every COMMIT sent through the app's engine, in order."""
    seen: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(" ".join(sql.split()))

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    engine = ctx.engine.sync_engine
    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    yield seen
    event.remove(engine, "before_cursor_execute", statement)
    event.remove(engine, "commit", commit)


async def test_the_raffle_row_is_updated_last_before_the_commit(
    client: httpx.AsyncClient,
    ctx: AppContext,
    stripe_api: FakeStripe,
    sql_and_commits: list[str],
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin)
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")
    sql_and_commits.clear()

    response = await buy(client, raffle["id"], buyer, 2)

    assert response.status_code == 201, response.text
    updates = [
        i for i, s in enumerate(sql_and_commits) if s.startswith("UPDATE raffles_raffle SET")
    ]
    assert len(updates) == 1, sql_and_commits  # one purchase, one change of the counters
    assert sql_and_commits[updates[0] + 1] == "COMMIT", sql_and_commits[updates[0] :]
    inserted = [s for s in sql_and_commits[: updates[0]] if s.startswith("INSERT INTO")]
    assert any("raffles_purchase" in s for s in inserted)  # before the lock, not under it
    assert not any(s.startswith("SAVEPOINT") for s in sql_and_commits)


async def test_a_refused_reservation_leaves_nothing_behind(
    client: httpx.AsyncClient, ctx: AppContext, stripe_api: FakeStripe
) -> None:
    _, admin = await signed_in_as(client, ctx, "root@example.com", "superadmin")
    raffle = await create_raffle(client, ctx, admin, total_tickets=3, max_per_account=2)
    _, buyer = await verified_buyer(client, ctx, "buyer@example.com")
    _, other = await verified_buyer(client, ctx, "other@example.com")
    assert (await buy(client, raffle["id"], other, 2)).status_code == 201

    refused = await buy(client, raffle["id"], buyer, 2)  # 1 left
    fits = await buy(client, raffle["id"], buyer, 1)
    _, third = await verified_buyer(client, ctx, "third@example.com")
    again = await buy(client, raffle["id"], third, 1)  # the last one went to the buyer
    mine = (
        await client.get("/api/v1/users/me/purchases", headers=buyer, params={"limit": 10})
    ).json()["items"]
    public = (await client.get(f"/api/v1/raffles/{raffle['id']}")).json()

    assert refused.status_code == 409
    assert refused.json()["code"] == "tickets_unavailable"
    assert refused.json()["detail"] == "1 tickets are left."
    # Kept on the holding, the refused 2 would leave no room under the maximum of 2.
    assert fits.status_code == 201
    assert again.json()["code"] == "tickets_unavailable"
    assert [p["quantity"] for p in mine] == [1]  # the refused purchase row is gone
    assert public["tickets_remaining"] == 0
