"""Errors of profiles, preferences and avatars."""

from __future__ import annotations

from atrium.errors import AppError, Conflict, NotFound


class ProfileNotFound(NotFound):
    """No such profile, or one the caller may not see: the two are indistinguishable."""

    code = "profile_not_found"
    title = "Profile not found"


class UsernameTaken(Conflict):
    code = "username_taken"
    title = "The username is taken"


class AvatarNotFound(NotFound):
    code = "avatar_not_found"
    title = "Avatar not found"


class UploadTooLarge(AppError):
    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedImageType(AppError):
    status = 415
    code = "unsupported_image_type"
    title = "Unsupported image type"


class InvalidImage(AppError):
    status = 422
    code = "invalid_image"
    title = "The image cannot be read"


class ImageTooLarge(AppError):
    """More pixels than ``avatars.max_pixels``: refused before decoding (decompression bomb)."""

    status = 422
    code = "image_too_large"
    title = "The image has too many pixels"
