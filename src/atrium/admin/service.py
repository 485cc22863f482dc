"""Account administration: list, view, change, suspend, soft-delete, restore, bulk
actions and the retention purge, one module per concern:

- :mod:`atrium.admin.listing`: the searchable, keyset-paginated list and one account;
- :mod:`atrium.admin.accounts`: changes to one account (fields, status, sessions, soft
  delete, restore);
- :mod:`atrium.admin.bulk`: one action on up to 1000 accounts, all or nothing;
- :mod:`atrium.admin.purge`: removing soft-deleted accounts after retention.

:class:`AdminService` offers all of them over one request's unit of work.
"""

from __future__ import annotations

from atrium.admin.accounts import AccountAdmin
from atrium.admin.bulk import BulkAdmin
from atrium.admin.listing import UserListing, admin_user_read
from atrium.admin.purge import purge_expired

__all__ = ["AdminService", "admin_user_read", "purge_expired"]


class AdminService(UserListing, AccountAdmin, BulkAdmin):
    """Every administrative operation on accounts, over one request's unit of work."""
