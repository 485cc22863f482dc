"""TOTP (RFC 6238) with pyotp: 30-second steps, 6 digits, SHA-1 (what authenticator apps
support), one step of drift either way, and each step accepted at most once.

The time step of the accepted code is returned so that the caller can store it as the
factor's ``last_used_step`` with a conditional UPDATE (``last_used_step < step``): a
code, or an older one, presented again is refused even under concurrency (RFC 6238 §5.2,
"the verifier MUST NOT accept the second attempt of the OTP after the successful
validation has been issued for the first OTP").
"""

from __future__ import annotations

from datetime import datetime

import pyotp
import segno

PERIOD_SECONDS = 30
DIGITS = 6
DRIFT_STEPS = 1


def new_secret() -> str:
    """A random base32 secret of 160 bits (RFC 4226 §4 recommends 160)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """The ``otpauth://totp/...`` URI of Google Authenticator's Key Uri Format."""
    return pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_SECONDS).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an SVG document (segno; error correction M)."""
    return str(segno.make(uri, error="m", micro=False).svg_inline(scale=4, border=2))


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step (``floor(unix time / 30)``) at which ``code`` is valid within one step
    of ``now``, or None. Constant-time comparisons (pyotp ``strings_equal``)."""
    code = code.strip().replace(" ", "")
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=PERIOD_SECONDS)
    current = totp.timecode(now)
    found = None
    for offset in range(-DRIFT_STEPS, DRIFT_STEPS + 1):
        if pyotp.utils.strings_equal(code, totp.at(now, counter_offset=offset)):
            found = current + offset
    return found
