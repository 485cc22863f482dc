"""The draw's published algorithm against the issue's test vector; the application's
Alembic branch."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import create_engine, inspect

from atrium import migrate
from atrium.apps.raffles.draw import commitment, ledger_hash, ledger_text, winners

SEED = bytes(range(32))
TICKETS = [(n, uuid.UUID(int=n)) for n in range(1, 11)]


def test_the_commitment_is_sha256_of_the_seed() -> None:
    assert commitment(SEED) == "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"


def test_the_ledger_hash_of_the_test_vector() -> None:
    assert ledger_text(TICKETS).splitlines()[0] == "1:00000000-0000-0000-0000-000000000001"
    assert (
        ledger_hash(TICKETS) == "2fa111784e0bb080b14d1c5017a61d67844f8ac1323c3ead56c99b4439ab8188"
    )


def test_the_ledger_is_in_number_order_whatever_the_input_order() -> None:
    assert ledger_hash(list(reversed(TICKETS))) == ledger_hash(TICKETS)


def test_the_test_vector_draws_tickets_9_4_1() -> None:
    digest = bytes.fromhex(ledger_hash(TICKETS))

    assert winners(SEED, digest, b"\xab" * 32, 10, 3) == [9, 4, 1]


def test_no_ticket_no_winner_and_never_more_winners_than_tickets() -> None:
    digest = bytes.fromhex(ledger_hash([]))

    assert winners(SEED, digest, b"\xab" * 32, 0, 3) == []
    assert sorted(winners(SEED, digest, b"\xab" * 32, 2, 5)) == [1, 2]


def test_the_application_branch_upgrades_and_downgrades_alone(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"

    def tables() -> set[str]:
        engine = create_engine(url.replace("+aiosqlite", ""))
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    migrate.upgrade(url)
    platform = tables()
    migrate.upgrade(url, apps=["raffles"])
    with_app = tables()
    migrate.downgrade(url, "raffles@base", apps=["raffles"])

    assert {t for t in with_app - platform} == {
        "raffles_raffle",
        "raffles_purchase",
        "raffles_holding",
        "raffles_ticket",
        "raffles_idempotency_key",
        "raffles_stripe_event",
        "raffles_draw_log",
    }
    assert tables() == platform


def test_the_migration_builds_exactly_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from atrium.apps.raffles.models import RafflesBase

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    migrate.upgrade(url, apps=["raffles"])
    engine = create_engine(url.replace("+aiosqlite", ""))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, _: (
                        kind != "table" or str(name).startswith("raffles_")
                    ),
                },
            )
            diff = compare_metadata(context, RafflesBase.metadata)
    finally:
        engine.dispose()

    assert diff == []
