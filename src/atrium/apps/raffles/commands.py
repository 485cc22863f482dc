"""``atrium raffles …``: commands of the raffles application."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import anyio
import typer

app = typer.Typer(no_args_is_help=True, help="Raffles: check draws.")


@app.callback()
def raffles() -> None:
    """Raffles: check draws (a group, so that commands keep their names)."""


async def gather(
    settings: Any, raffle_id: uuid.UUID
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """The public data of a raffle's draw, as the API publishes it: the draw record, the
    ledger and the whole draw log (JSON values).

    Raises:
        RaffleNotFound: no such published raffle.
    """
    from atrium.apps.raffles.exceptions import RaffleNotFound
    from atrium.apps.raffles.models import RaffleStatus
    from atrium.apps.raffles.repository import RaffleRepository
    from atrium.apps.raffles.settings import RafflesSettings
    from atrium.apps.raffles.views import draw_record, log_view
    from atrium.core.db import create_engine, create_sessionmaker

    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as db:
            repo = RaffleRepository(db)
            raffle = await repo.get(raffle_id)
            if raffle is None or raffle.status == RaffleStatus.draft.value:
                raise RaffleNotFound()
            ledger = await repo.ledger(raffle_id)
            ids = dict(ledger)
            record = draw_record(raffle, RafflesSettings().beacon_url, ids)
            entries = await repo.draw_log(10**9, None)
    finally:
        await engine.dispose()
    return (
        record.model_dump(mode="json"),
        [{"number": n, "ticket_id": str(t)} for n, t in ledger],
        [log_view(e).model_dump(mode="json") for e in entries],
    )


@app.command()
def verify(
    raffle: Annotated[uuid.UUID, typer.Option("--raffle", help="The raffle's id.")],
    beacon: Annotated[bool, typer.Option(help="Fetch the beacon round again and compare.")] = True,
) -> None:
    """Recompute a raffle's draw from its public data: commitment, ledger hash, winners,
    the draw log's hash chain (and the beacon value, from the beacon)."""
    from atrium.apps.raffles.beacon import beacon_for
    from atrium.apps.raffles.exceptions import BeaconUnavailable, RaffleNotFound
    from atrium.apps.raffles.settings import RafflesSettings
    from atrium.apps.raffles.verify import check_draw, check_log
    from atrium.config import get_settings

    settings = get_settings()
    try:
        record, ledger, log = anyio.run(gather, settings, raffle)
    except RaffleNotFound:
        typer.echo(f"error: no published raffle {raffle}", err=True)
        raise typer.Exit(2) from None
    problems = check_draw(record, ledger) + check_log(log, record)
    if beacon and record["status"] == "drawn" and record["beacon_round"] is not None:
        try:
            value = anyio.run(beacon_for(RafflesSettings()).value, record["beacon_round"])
        except BeaconUnavailable as exc:
            problems.append(f"the beacon could not be asked: {exc}")
        else:
            if value is None or value.hex() != record["beacon_value"]:
                problems.append("the beacon's value of the round is not the record's")
    for problem in problems:
        typer.echo(f"FAIL: {problem}")
    if problems:
        raise typer.Exit(1)
    numbers = ", ".join(str(w["number"]) for w in record["winners"] or [])
    summary = f"winners: {numbers or 'none'}; log of {len(log)} entries"
    typer.echo(f"ok: raffle {raffle} {record['status']}; {summary}")
