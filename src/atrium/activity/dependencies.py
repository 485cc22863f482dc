"""Permission checks of activity and analytics, named once."""

from __future__ import annotations

from typing import Annotated

from atrium.rbac.dependencies import Authorized, require

AnalyticsRead = Annotated[Authorized, require("analytics:read")]
UsersRead = Annotated[Authorized, require("users:read")]
