"""The avatar pipeline: identify, refuse bombs, strip metadata, re-encode to WebP.

Pure, blocking functions, run in a worker thread by the service (``anyio.to_thread``).

- The type is detected from the bytes by Pillow's format plugins, restricted to JPEG,
  PNG, WebP and GIF; the file name and the client's Content-Type are ignored.
- The pixel count is checked from the header, before any pixel is decoded, against
  ``avatars.max_pixels`` (a decompression bomb has a small file and a huge canvas).
- Truncated or corrupt images fail to decode (``LOAD_TRUNCATED_IMAGES`` stays off).
- Orientation from EXIF is applied, then the pixels are copied into a new image with no
  metadata at all (EXIF, GPS, XMP, ICC, comments), so nothing of the upload but its
  pixels survives; trailing data (polyglots) is dropped by the re-encoding. Animated
  images keep their first frame.
- Each size is a centred square crop, stored as WebP.
"""

from __future__ import annotations

import hashlib
import io
import uuid
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from atrium.profiles.exceptions import ImageTooLarge, InvalidImage, UnsupportedImageType

FORMATS = ("JPEG", "PNG", "WEBP", "GIF")
CONTENT_TYPE = "image/webp"


@dataclass(frozen=True)
class ProcessedAvatar:
    version: str
    """Content hash of the upload (24 hex digits): names the objects, changes the URLs."""
    images: dict[int, bytes]
    """WebP bytes by edge length in pixels."""
    source_format: str


def avatar_key(user_id: uuid.UUID, version: str, size: int) -> str:
    return f"avatars/{user_id}/{version}/{size}.webp"


def avatar_keys(user_id: uuid.UUID, version: str, sizes: list[int]) -> list[str]:
    return [avatar_key(user_id, version, size) for size in sizes]


def process_avatar(
    data: bytes, *, max_pixels: int, sizes: list[int], quality: int
) -> ProcessedAvatar:
    """Re-encode the uploaded image ``data`` into square WebP images of ``sizes`` pixels.

    Raises:
        UnsupportedImageType: 415, not a JPEG, PNG, WebP or GIF image.
        ImageTooLarge: 422, more than ``max_pixels`` pixels (decompression bomb).
        InvalidImage: 422, truncated or corrupt.
    """
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as exc:
        raise UnsupportedImageType("Avatars must be JPEG, PNG, WebP or GIF images.") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImage("The image cannot be read.") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS) fired before ours could look.
        raise ImageTooLarge("The image has too many pixels.") from exc
    with image:
        width, height = image.size
        if width * height > max_pixels or width < 1 or height < 1:
            raise ImageTooLarge(
                f"The image is {width}x{height} pixels; at most {max_pixels} are accepted."
            )
        source_format = image.format or "unknown"
        try:
            image.seek(0)  # the first frame of an animation
            image.load()
            oriented = ImageOps.exif_transpose(image)
            pixels = _plain(oriented)
        except Image.DecompressionBombError as exc:
            raise ImageTooLarge("The image has too many pixels.") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise InvalidImage("The image is truncated or corrupt.") from exc
    images: dict[int, bytes] = {}
    for size in sizes:
        square = ImageOps.fit(pixels, (size, size), Image.Resampling.LANCZOS)
        clean = Image.frombytes(square.mode, square.size, square.tobytes())
        out = io.BytesIO()
        clean.save(out, format="WEBP", quality=quality, method=4)
        images[size] = out.getvalue()
    version = hashlib.sha256(data).hexdigest()[:24]
    return ProcessedAvatar(version=version, images=images, source_format=source_format)


def _plain(image: Image.Image) -> Image.Image:
    """The pixels of ``image`` in RGB or RGBA (CMYK, palette, greyscale converted), in a
    new image that carries no metadata."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    converted = image.convert("RGBA" if has_alpha else "RGB")
    return Image.frombytes(converted.mode, converted.size, converted.tobytes())
