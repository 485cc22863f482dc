"""Parameter types shared by the routers.

:data:`UtcDatetime` is the one type of every date-time query parameter: an RFC 3339
timestamp with its offset (a naive one is refused, since its meaning would depend on the
server's zone), converted to UTC. A value whose UTC form falls outside the years
1-9999 (``9999-12-31T23:59:59-14:00``, ``0001-01-01T00:00:00+14:00``) is refused too: no
comparison with a stored timestamp can be made with it. Both are 422 ``validation_error``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the date-time is outside the years 1-9999 in UTC") from exc


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
