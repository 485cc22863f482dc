"""Password policy after NIST SP 800-63B §5.1.1.2 (memorized secrets).

Length 8 to 128 characters (settings), no composition rules, refused when it is a commonly
used password (a shipped list of 19,640 entries, the Django project's list) or is little
more than the account's email address ("context-specific words", §5.1.1.2): what is left
once the email's local part is taken out must still be long enough. A long passphrase that
happens to contain the local part ("a long admin passphrase" for admin@example.com) is
accepted; "admin2024" is not.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import Any

from atrium.config import AuthSettings
from atrium.core.passwords import normalize_password
from atrium.users.exceptions import WeakPassword

# Local parts shorter than this ("a@x.org") would refuse far too many passwords.
_MIN_LOCAL_PART = 3


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower-cased."""
    data = resources.files("atrium.users").joinpath("data/common-passwords.txt.gz").read_bytes()
    return frozenset(line.strip().lower() for line in gzip.decompress(data).decode().splitlines())


def check_password(password: str, *, email: str, settings: AuthSettings, field: str) -> None:
    """Raise :class:`WeakPassword` listing every rule ``password`` breaks; each reason's
    ``loc`` is ``["body", field]``, the request field that carried the password."""
    pw = normalize_password(password)
    reasons: list[dict[str, Any]] = []
    loc = ["body", field]
    # Length counts the characters as entered (what the request schema's minLength and
    # maxLength count): NFKC may join or split characters, which the user never sees.
    if len(password) < settings.password_min_length:
        reasons.append(
            {
                "loc": loc,
                "type": "too_short",
                "msg": f"must be at least {settings.password_min_length} characters",
            }
        )
    if len(password) > settings.password_max_length:
        reasons.append(
            {
                "loc": loc,
                "type": "too_long",
                "msg": f"must be at most {settings.password_max_length} characters",
            }
        )
    lowered = pw.lower()
    if lowered in common_passwords():
        reasons.append({"loc": loc, "type": "common", "msg": "is a commonly used password"})
    if _mostly_email(pw, email, settings.password_min_length):
        reasons.append(
            {
                "loc": loc,
                "type": "contains_email",
                "msg": "must not be mostly the email address: add other words",
            }
        )
    if reasons:
        raise WeakPassword(reasons)


def _mostly_email(password: str, email: str, min_length: int) -> bool:
    """Whether ``password`` without the email (or its local part) is shorter than the
    minimum length or a common password: the address with a little around it."""
    folded = password.casefold()
    address = email.casefold()
    local = address.rsplit("@", 1)[0]
    rest = folded.replace(address, "")
    if len(local) >= _MIN_LOCAL_PART:
        rest = rest.replace(local, "")
    rest = rest.strip()
    return rest != folded and (len(rest) < min_length or rest in common_passwords())
