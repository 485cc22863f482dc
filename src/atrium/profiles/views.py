"""How a profile is shown: to its owner, and to others according to its privacy settings."""

from __future__ import annotations

import uuid

from atrium.models import Profile, User
from atrium.profiles.avatar import avatar_key
from atrium.profiles.cache import ProfileRecord
from atrium.profiles.schemas import AVATAR_PATH, OwnProfile, PublicProfile, Visibility

PROFILE_FIELDS = ("display_name", "bio", "location", "website", "pronouns", "locale", "timezone")
PRIVACY_FIELDS = ("visibility", "location_visibility", "website_visibility", "pronouns_visibility")

ANONYMOUS, MEMBER, OWNER, MODERATOR = "anonymous", "member", "owner", "moderator"


def may_see(level: str, viewer: str) -> bool:
    """Whether a ``viewer`` (anonymous, member, owner, moderator) may see something whose
    visibility is ``level``."""
    if level == Visibility.public:
        return True
    if level == Visibility.members:
        return viewer != ANONYMOUS
    return viewer in (OWNER, MODERATOR)


def avatar_urls(user_id: uuid.UUID, version: str | None, sizes: list[int]) -> dict[str, str] | None:
    if version is None:
        return None
    return {str(size): f"{AVATAR_PATH}/{avatar_key(user_id, version, size)[8:]}" for size in sizes}


def public_view(record: ProfileRecord, viewer: str, sizes: list[int]) -> PublicProfile:
    """``record`` as ``viewer`` may see it (the profile itself is already visible)."""

    def field(name: str) -> str | None:
        value: str | None = getattr(record, name)
        return value if may_see(getattr(record, f"{name}_visibility"), viewer) else None

    return PublicProfile(
        username=record.username,
        display_name=record.display_name,
        bio=record.bio,
        location=field("location"),
        website=field("website"),
        pronouns=field("pronouns"),
        verified=record.verified,
        avatar=avatar_urls(record.user_id, record.avatar_version, sizes),
    )


def profile_record(user: User, profile: Profile | None) -> ProfileRecord:
    """The cached record of ``user``'s profile (fields, privacy settings, badge, avatar)."""
    # Only looked up by username, so the handle is set.
    base = ProfileRecord(
        user_id=user.id, username=user.username or "", verified=user.profile_verified
    )
    if profile is None:
        return base
    return base.model_copy(
        update={
            name: getattr(profile, name)
            for name in (
                "display_name",
                "bio",
                "location",
                "website",
                "pronouns",
                *PRIVACY_FIELDS,
                "avatar_version",
            )
        }
    )


def own_profile(user: User, profile: Profile | None, sizes: list[int]) -> OwnProfile:
    """``user``'s profile as its owner sees it: every field and its privacy settings."""
    public = Visibility.public
    return OwnProfile(
        username=user.username,
        display_name=profile.display_name if profile else None,
        bio=profile.bio if profile else None,
        location=profile.location if profile else None,
        website=profile.website if profile else None,
        pronouns=profile.pronouns if profile else None,
        locale=profile.locale if profile else None,
        timezone=profile.timezone if profile else None,
        visibility=Visibility(profile.visibility) if profile else public,
        location_visibility=Visibility(profile.location_visibility) if profile else public,
        website_visibility=Visibility(profile.website_visibility) if profile else public,
        pronouns_visibility=Visibility(profile.pronouns_visibility) if profile else public,
        verified=user.profile_verified,
        avatar=avatar_urls(user.id, profile.avatar_version, sizes) if profile else None,
        updated_at=profile.updated_at if profile else None,
    )
