"""Permission checks of data exports, named once."""

from __future__ import annotations

from typing import Annotated

from atrium.rbac.dependencies import Authorized, require

UsersExport = Annotated[Authorized, require("users:export")]
