"""The permission checks of the raffles application, named once."""

from __future__ import annotations

from typing import Annotated

from atrium.rbac.dependencies import Authorized, require

RafflesManage = Annotated[Authorized, require("raffles:manage")]
RafflesDraw = Annotated[Authorized, require("raffles:draw")]
PaymentsRefund = Annotated[Authorized, require("raffles.payments:refund")]
