"""Permission checks of account administration, named once (``caller: UsersWrite``).

Each alias authenticates the caller and answers 403 ``permission_denied`` without the
permission (see :func:`atrium.rbac.dependencies.require`). Bulk actions check the
permission of the chosen action in the service (``admin/bulk.py``).
"""

from __future__ import annotations

from typing import Annotated

from atrium.rbac.dependencies import Authorized, require

UsersRead = Annotated[Authorized, require("users:read")]
UsersWrite = Annotated[Authorized, require("users:write")]
UsersDelete = Annotated[Authorized, require("users:delete")]
SessionsRevoke = Annotated[Authorized, require("sessions:revoke")]
AuditRead = Annotated[Authorized, require("audit:read")]
# Any signed-in caller; the service checks the permission of the chosen bulk action.
BulkCaller = Annotated[Authorized, require()]
