"""Password policy after NIST SP 800-63B §5.1.1.2 (memorized secrets).

Length 8 to 128 characters (settings), no composition rules, refused when it is a commonly
used password (a shipped list of 19,640 entries, the Django project's list) or contains the
account's email local part.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import Any

from atrium.auth.exceptions import WeakPassword
from atrium.config import AuthSettings
from atrium.core.passwords import normalize_password

# Local parts shorter than this ("a@x.org") would refuse far too many passwords.
_MIN_LOCAL_PART = 3


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased."""
    data = resources.files("atrium.auth").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip().lower() for line in gzip.decompress(data).decode().splitlines())


def check_password(password: str, *, email: str, settings: AuthSettings) -> None:
    """Raise :class:`WeakPassword` listing every rule ``password`` breaks."""
    pw = normalize_password(password)
    reasons: list[dict[str, Any]] = []
    if len(pw) < settings.password_min_length:
        reasons.append(
            {
                "loc": ["body", "password"],
                "type": "too_short",
                "msg": f"must be at least {settings.password_min_length} characters",
            }
        )
    if len(pw) > settings.password_max_length:
        reasons.append(
            {
                "loc": ["body", "password"],
                "type": "too_long",
                "msg": f"must be at most {settings.password_max_length} characters",
            }
        )
    lowered = pw.lower()
    if lowered in common_passwords():
        reasons.append(
            {"loc": ["body", "password"], "type": "common", "msg": "is a commonly used password"}
        )
    local = email.rsplit("@", 1)[0].casefold()
    if len(local) >= _MIN_LOCAL_PART and local in pw.casefold():
        reasons.append(
            {
                "loc": ["body", "password"],
                "type": "contains_email",
                "msg": "must not contain the email address",
            }
        )
    if reasons:
        raise WeakPassword(reasons)
