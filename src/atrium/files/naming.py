"""Safe download names: cleaning client file names and ``Content-Disposition``.

The client's name is never used as a path (objects are stored under generated keys); it
is only echoed in ``Content-Disposition: attachment`` (RFC 6266), with an ASCII fallback
in ``filename`` and the exact UTF-8 name in ``filename*`` (RFC 8187, formerly RFC 5987).
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

_UNSAFE_ASCII = re.compile(r"[^A-Za-z0-9._ ()+-]")
MAX_NAME = 200


def clean_filename(name: str | None) -> str:
    """The last path segment of ``name``, NFC, without control or format characters,
    separators or quotes, at most 200 characters; ``file`` when nothing is left."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C" and c not in '"<>:|?*')
    name = name.strip(" .")
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (
            (stem[: MAX_NAME - len(ext) - 1] + dot + ext)
            if dot and len(ext) < 16
            else name[:MAX_NAME]
        )
    return name or "file"


def content_disposition(filename: str) -> str:
    """``attachment; filename="<ascii>"; filename*=UTF-8''<percent-encoded>``."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = _UNSAFE_ASCII.sub("_", ascii_name).strip(" ")
    if not ascii_name.strip("."):
        ascii_name = "file"
    elif ascii_name.startswith("."):  # nothing of the stem was ASCII: "报告.pdf"
        ascii_name = "file" + ascii_name
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"
