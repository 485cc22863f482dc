"""FastAPI dependencies of the operational surface."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from atrium.context import Ctx
from atrium.errors import NotAuthenticated


async def metrics_reader(request: Request, ctx: Ctx) -> None:
    """Let the scrape through when ``metrics.token`` is unset, or when the request carries
    ``Authorization: Bearer <metrics.token>`` (compared in constant time).

    Raises:
        NotAuthenticated: 401, the token is set and was not presented.
    """
    token = ctx.settings.metrics.token
    if token is None:
        return
    expected = f"Bearer {token.get_secret_value()}"
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise NotAuthenticated("The metrics token is required.")


MetricsReader = Annotated[None, Depends(metrics_reader)]
