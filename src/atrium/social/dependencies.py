"""Permission checks of social login, named once."""

from __future__ import annotations

from typing import Annotated

from atrium.rbac.dependencies import Authorized, require

ProvidersManage = Annotated[Authorized, require("identity_providers:manage")]
