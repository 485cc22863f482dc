"""Permission checks of profiles, named once (``caller: ProfilesModerate``)."""

from __future__ import annotations

from typing import Annotated

from atrium.rbac.dependencies import Authorized, require

ProfilesModerate = Annotated[Authorized, require("profiles:moderate")]
