"""Who may fetch an avatar image: the rule behind ``GET /avatars/{user_id}/{version}/…``.

An avatar is part of its profile, so it is served exactly to those who may see the
profile: nobody for a deleted or suspended account, anyone for a public profile, signed-in
callers for a members-only one, and the owner and moderators for a private one. Anything
else is 404, the same answer as a missing image (no enumeration).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from atrium.auth.principal import Principal
from atrium.context import AppContext
from atrium.profiles.exceptions import AvatarNotFound
from atrium.profiles.repository import ProfileRepository
from atrium.profiles.schemas import Visibility
from atrium.profiles.views import ANONYMOUS, MEMBER, MODERATOR, OWNER, may_see


@dataclass(frozen=True)
class AvatarAccess:
    """The caller may fetch the avatar; ``public`` when anyone may (shared caches too)."""

    public: bool


async def authorize_avatar(
    ctx: AppContext, user_id: uuid.UUID, version: str, principal: Principal | None
) -> AvatarAccess:
    """Whether ``principal`` may fetch version ``version`` of ``user_id``'s avatar.

    Raises:
        AvatarNotFound: 404, the account is deleted or suspended, the version is not the
            current avatar, or the caller may not see the profile.
    """
    async with ctx.sessionmaker() as db:
        owner = await ProfileRepository(db).avatar_owner(user_id)
    if owner is None or owner.avatar_version != version:
        raise AvatarNotFound("No such avatar.")
    if owner.visibility == Visibility.public:
        return AvatarAccess(public=True)
    if principal is None:
        viewer = ANONYMOUS
    elif principal.user_id == user_id:
        viewer = OWNER
    elif owner.visibility == Visibility.private:
        grants = await ctx.rbac.grants_of(principal.user_id)
        moderates = principal.may_use("profiles:moderate", grants.permissions)
        viewer = MODERATOR if moderates else MEMBER
    else:
        viewer = MEMBER
    if not may_see(owner.visibility, viewer):
        raise AvatarNotFound("No such avatar.")
    return AvatarAccess(public=False)
