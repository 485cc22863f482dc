"""How strongly a session was authenticated: NIST SP 800-63B authenticator assurance
levels, expressed with the OpenID Connect Core claims ``acr``, ``amr`` (RFC 8176 values)
and ``auth_time``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# RFC 8176 §2 registers these (and more); Atrium issues only these, and ``fed`` (a login
# through an external identity provider: social login), which RFC 8176 does not register
# but identity providers use (Microsoft Entra ID).
AMR_VALUES = frozenset({"pwd", "otp", "mfa", "hwk", "swk", "user", "pin", "fpt", "face", "fed"})
ACR_VALUES = {1: "aal1", 2: "aal2"}


@dataclass(frozen=True)
class Assurance:
    """How strongly a session was authenticated.

    ``aal``: the NIST SP 800-63B authenticator assurance level, 1 (one factor) or 2 (two
    factors), carried in tokens as the OpenID Connect ``acr`` claim ``"aal1"``/``"aal2"``;
    ``amr``: the RFC 8176 authentication method references (``pwd``, ``otp``, ``mfa``,
    ``hwk``, ``swk``, ``user`` ...); ``auth_time``: when the user last actively
    authenticated, in seconds since the epoch (OpenID Connect Core §2).
    """

    aal: int
    amr: tuple[str, ...]
    auth_time: int

    @property
    def acr(self) -> str:
        return ACR_VALUES[self.aal]

    @classmethod
    def of(cls, aal: int, amr: list[str] | tuple[str, ...], auth_time: datetime) -> Assurance:
        """From a session's columns (``auth_time`` an aware datetime)."""
        return cls(aal=aal, amr=tuple(amr), auth_time=int(auth_time.timestamp()))

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], *, latest: int) -> Assurance:
        """From a token's ``acr``, ``amr`` and ``auth_time`` (``auth_time`` ≤ ``latest``).

        Raises:
            ValueError: a claim is missing, of the wrong type or not a known value.
        """
        acr, amr, auth_time = claims.get("acr"), claims.get("amr"), claims.get("auth_time")
        aal = next((level for level, name in ACR_VALUES.items() if name == acr), None)
        if aal is None:
            raise ValueError("bad acr")
        if (
            not isinstance(amr, list)
            or not 0 < len(amr) <= len(AMR_VALUES)
            or not all(isinstance(m, str) and m in AMR_VALUES for m in amr)
        ):
            raise ValueError("bad amr")
        if not isinstance(auth_time, int) or isinstance(auth_time, bool):
            raise ValueError("bad auth_time")
        if not 0 <= auth_time <= latest:
            raise ValueError("bad auth_time")
        return cls(aal=aal, amr=tuple(amr), auth_time=auth_time)


NO_USER_AUTHENTICATION = Assurance(aal=1, amr=(), auth_time=0)
"""The assurance of a credential with no user authentication behind it (an API key):
aal1, no method, never recent enough for a step-up check."""
