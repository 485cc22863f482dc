"""Permission checks of user imports, named once."""

from __future__ import annotations

from typing import Annotated

from atrium.rbac.dependencies import Authorized, require

UsersImport = Annotated[Authorized, require("users:import")]
