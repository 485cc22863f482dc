"""HTTP routes of profiles, preferences and avatars.

- ``/api/v1/users/me/profile``, ``/users/me/preferences``, ``/users/me/avatar``: the
  signed-in user's own.
- ``/api/v1/profiles/{username}``: the public view (public route, answer depends on the
  caller); ``/profiles/{username}/verification``: moderators.
- ``/api/v1/avatars/{user_id}/{version}/{size}.webp``: avatar images, to whoever may see
  the profile (public route; a public profile's URL names the content, so it is cached
  for a year; other avatars are never stored by shared caches).
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, File, Response, UploadFile, status
from pydantic import WithJsonSchema

from atrium.auth.dependencies import CurrentPrincipal, OptionalPrincipal, unverified_may
from atrium.config import UnverifiedAction
from atrium.context import Ctx
from atrium.core.db import DbSession
from atrium.core.ratelimit import RateLimited
from atrium.core.storage import ObjectNotFound
from atrium.errors import InvalidToken, NotAuthenticated, ValidationFailed, problem_responses
from atrium.profiles.avatar import CONTENT_TYPE, avatar_key
from atrium.profiles.avatar_access import authorize_avatar
from atrium.profiles.dependencies import ProfilesModerate
from atrium.profiles.exceptions import (
    AvatarNotFound,
    ImageTooLarge,
    InvalidImage,
    ProfileNotFound,
    UnsupportedImageType,
    UploadTooLarge,
    UsernameTaken,
)
from atrium.profiles.schemas import (
    OwnProfile,
    Preferences,
    PreferencesRead,
    ProfileUpdate,
    PublicProfile,
    VerificationUpdate,
)
from atrium.profiles.service import ProfileService
from atrium.rbac.exceptions import PermissionDenied
from atrium.verification.exceptions import EmailNotVerified

me_router = APIRouter(prefix="/users/me", tags=["profiles"])
router = APIRouter(tags=["profiles"])

_AUTH = (NotAuthenticated, InvalidToken)
_GATED = (NotAuthenticated, InvalidToken, EmailNotVerified)
_UPDATE = Depends(unverified_may(UnverifiedAction.update_own_account))
_AVATAR_NAME = re.compile(r"^([0-9]{1,4})\.webp$")
_VERSION = re.compile(r"^[0-9a-f]{24}$")
# The URL changes with the content, so caches may keep an avatar for a year (RFC 8246).
AVATAR_CACHE_CONTROL = "public, max-age=31536000, immutable"
# The avatar of a members-only or private profile: never in a shared cache.
PRIVATE_AVATAR_CACHE = "private, no-store"


@me_router.get("/profile", response_model=OwnProfile, responses=problem_responses(*_AUTH))
async def read_my_profile(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> OwnProfile:
    """The signed-in user's profile, with its privacy settings."""
    return await ProfileService(db, ctx).get_own(principal)


@me_router.patch(
    "/profile",
    response_model=OwnProfile,
    responses=problem_responses(*_GATED, UsernameTaken, ValidationFailed),
    dependencies=[_UPDATE],
)
async def update_my_profile(
    body: ProfileUpdate, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> OwnProfile:
    """Change profile fields and privacy settings; absent fields are unchanged."""
    changes = body.model_dump(exclude_unset=True)
    return await ProfileService(db, ctx).update_own(principal, changes)


@me_router.put(
    "/avatar",
    response_model=OwnProfile,
    responses=problem_responses(
        *_GATED, UploadTooLarge, UnsupportedImageType, ImageTooLarge, InvalidImage, RateLimited
    ),
    dependencies=[_UPDATE],
)
async def put_my_avatar(
    file: Annotated[UploadFile, File(description="JPEG, PNG, WebP or GIF image.")],
    principal: CurrentPrincipal,
    db: DbSession,
    ctx: Ctx,
) -> OwnProfile:
    """Upload a new avatar (multipart field `file`); stored as 64, 256 and 512 px WebP."""
    return await ProfileService(db, ctx).set_avatar(principal, file)


@me_router.delete(
    "/avatar",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(*_GATED),
    dependencies=[_UPDATE],
)
async def delete_my_avatar(principal: CurrentPrincipal, db: DbSession, ctx: Ctx) -> Response:
    """Remove the avatar."""
    await ProfileService(db, ctx).delete_avatar(principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@me_router.get("/preferences", response_model=PreferencesRead, responses=problem_responses(*_AUTH))
async def read_my_preferences(
    principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> PreferencesRead:
    """Every preference, defaults included."""
    return await ProfileService(db, ctx).get_preferences(principal)


@me_router.put(
    "/preferences",
    response_model=PreferencesRead,
    responses=problem_responses(*_GATED, ValidationFailed),
    dependencies=[_UPDATE],
)
async def replace_my_preferences(
    body: Preferences, principal: CurrentPrincipal, db: DbSession, ctx: Ctx
) -> PreferencesRead:
    """Replace every preference; keys not sent return to their defaults."""
    return await ProfileService(db, ctx).put_preferences(principal, body)


@me_router.patch(
    "/preferences",
    response_model=PreferencesRead,
    responses=problem_responses(*_GATED, ValidationFailed),
    dependencies=[_UPDATE],
)
async def update_my_preferences(
    body: Annotated[
        dict[str, Any],
        # Documented as the preferences themselves: every key optional (each has a
        # default), nested objects partial, unknown keys refused — what the merge accepts.
        WithJsonSchema({"$ref": "#/components/schemas/Preferences"}),
        Body(examples=[{"theme": "dark", "notifications": {"mentions": {"email": True}}}]),
    ],
    principal: CurrentPrincipal,
    db: DbSession,
    ctx: Ctx,
) -> PreferencesRead:
    """Change some preferences (nested objects are merged); unknown keys are refused."""
    return await ProfileService(db, ctx).patch_preferences(principal, body)


@router.get(
    "/profiles/{username}",
    response_model=PublicProfile,
    responses=problem_responses(InvalidToken, ProfileNotFound),
)
async def read_profile(
    username: str, principal: OptionalPrincipal, db: DbSession, ctx: Ctx
) -> PublicProfile:
    """A user's profile as the caller may see it (public route; privacy applies)."""
    return await ProfileService(db, ctx).get_public(username, principal)


@router.put(
    "/profiles/{username}/verification",
    response_model=PublicProfile,
    responses=problem_responses(*_AUTH, PermissionDenied, ProfileNotFound, ValidationFailed),
)
async def set_profile_verification(
    username: str,
    body: VerificationUpdate,
    caller: ProfilesModerate,
    db: DbSession,
    ctx: Ctx,
) -> PublicProfile:
    """Set or clear a profile's verified badge (moderators)."""
    return await ProfileService(db, ctx).set_verified(caller.user_id, username, body.verified)


@router.get(
    "/avatars/{user_id}/{version}/{name}",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE: {}}},
        **problem_responses(InvalidToken, AvatarNotFound),
    },
)
async def read_avatar(
    user_id: uuid.UUID, version: str, name: str, principal: OptionalPrincipal, ctx: Ctx
) -> Response:
    """An avatar image, to whoever may see its profile (public route; privacy applies);
    `name` is `<size>.webp`."""
    match = _AVATAR_NAME.match(name)
    if match is None or not _VERSION.match(version):
        raise AvatarNotFound("No such avatar.")
    access = await authorize_avatar(ctx, user_id, version, principal)
    try:
        data = await ctx.storage.get_bytes(avatar_key(user_id, version, int(match.group(1))))
    except ObjectNotFound as exc:
        raise AvatarNotFound("No such avatar.") from exc
    return Response(
        content=data,
        media_type=CONTENT_TYPE,
        headers={
            # X-Content-Type-Options: nosniff is added to every response by the edge.
            "Cache-Control": AVATAR_CACHE_CONTROL if access.public else PRIVATE_AVATAR_CACHE,
            "Cross-Origin-Resource-Policy": "cross-origin",
            **({} if access.public else {"Vary": "Authorization"}),
        },
    )
