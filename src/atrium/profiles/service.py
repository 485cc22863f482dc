"""Profiles, privacy, verification, avatars and preferences, one module per concern:

- :mod:`atrium.profiles.views`: what a viewer may see of a profile;
- :mod:`atrium.profiles.profile`: the owner's fields and privacy, the public view, the badge;
- :mod:`atrium.profiles.avatars`: avatar upload, replacement and removal;
- :mod:`atrium.profiles.preferences`: the preferences document.

:class:`ProfileService` offers all of them over one request's unit of work.
"""

from __future__ import annotations

from atrium.profiles.avatars import Avatars
from atrium.profiles.preferences import PreferenceStore
from atrium.profiles.profile import Profiles

__all__ = ["ProfileService"]


class ProfileService(Profiles, Avatars, PreferenceStore):
    """Every profile operation, over one request's unit of work."""
