"""ID token claim checks and issuer matching without a provider: Microsoft's multi-tenant
issuer template, and what a discovery document may announce."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from atrium.social.exceptions import InvalidIdToken
from atrium.social.oidc import _issuer_matches, check_claims
from atrium.social.providers import resolve

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TEMPLATE = "https://login.microsoftonline.com/{tenantid}/v2.0"
TENANT = "9188040d-6c67-4c5b-b112-36a304b66dad"


def _microsoft() -> Any:
    return resolve(
        {"id": "microsoft", "preset": "microsoft", "client_id": "app"}, secret=None, source="t"
    )


def _claims(**extra: Any) -> dict[str, Any]:
    base = {
        "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
        "tid": TENANT,
        "sub": "s",
        "aud": "app",
        "exp": NOW.timestamp() + 300,
        "iat": NOW.timestamp(),
        "nonce": "n",
    }
    return {**base, **extra}


def test_microsoft_common_accepts_the_template_filled_with_the_tokens_tenant() -> None:
    provider = _microsoft()
    assert provider.issuer == "https://login.microsoftonline.com/common/v2.0"

    check_claims(_claims(), provider=provider, issuer=TEMPLATE, nonce="n", now=NOW, skew=0)


@pytest.mark.parametrize(
    "claims",
    [
        {"tid": "00000000-0000-0000-0000-000000000000"},  # iss of another tenant than tid
        {"tid": None},
        {"iss": TEMPLATE, "tid": None},
    ],
)
def test_microsoft_template_refuses_an_iss_that_is_not_its_tenants(claims: dict[str, Any]) -> None:
    token = {k: v for k, v in _claims(**claims).items() if v is not None}
    with pytest.raises(InvalidIdToken):
        check_claims(token, provider=_microsoft(), issuer=TEMPLATE, nonce="n", now=NOW, skew=0)


def test_discovery_issuer_must_be_the_configured_one() -> None:
    assert _issuer_matches("https://accounts.google.com", "https://accounts.google.com")
    assert not _issuer_matches("https://accounts.google.com", "https://evil.example")
    assert not _issuer_matches("https://accounts.google.com", "https://accounts.google.com/")
    assert _issuer_matches("https://login.microsoftonline.com/common/v2.0", TEMPLATE)
    assert not _issuer_matches("https://evil.example/common/v2.0", TEMPLATE)


def test_clock_skew_is_tolerated_within_the_setting() -> None:
    provider = _microsoft()
    late = _claims(exp=NOW.timestamp() - 30)
    check_claims(late, provider=provider, issuer=TEMPLATE, nonce="n", now=NOW, skew=60)
    with pytest.raises(InvalidIdToken):
        check_claims(late, provider=provider, issuer=TEMPLATE, nonce="n", now=NOW, skew=0)
