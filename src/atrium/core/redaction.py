"""Redaction of secrets from anything that leaves the process (logs, error reports).

Defence in depth: Atrium never logs request bodies or credential headers, and this removes
any value filed under a key that names a secret all the same (OWASP Logging Cheat Sheet).
"""

from __future__ import annotations

import re
from typing import Any

SECRET_KEY = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|api[-_]?key|hash|credential", re.I
)
REDACTED = "[redacted]"


def scrub(value: Any) -> Any:
    """A copy of ``value`` with every value under a secret-looking key replaced."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and SECRET_KEY.search(k) else scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value
