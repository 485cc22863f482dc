"""Record validation: the fast email path answers what email-validator answers."""

from __future__ import annotations

import pytest

from atrium.imports.validate import fast_normalize_email
from atrium.users.email import normalize_email
from atrium.users.exceptions import InvalidEmail

ADDRESSES = [
    "Ada@Example.ORG",
    "first.last+tag@sub.example.co.uk",
    "o'brien@example.ie",
    "x@localhost",
    "a@b",
    "a@-bad-.example",
    "a@exa_mple.com",
    "a..b@example.com",
    ".a@example.com",
    "a@example..com",
    "a" * 65 + "@example.com",
    "user@" + "d" * 250 + ".com",
    "jöran@example.se",
    "user@bücher.example",
    "user@123.123.123.123",
]


@pytest.mark.parametrize("raw", ADDRESSES)
def test_the_fast_path_answers_as_email_validator(raw: str) -> None:
    try:
        expected = normalize_email(raw)
    except InvalidEmail:
        with pytest.raises(InvalidEmail):
            fast_normalize_email(raw)
        with pytest.raises(InvalidEmail):  # twice: the domain's answer is cached
            fast_normalize_email(raw)
        return
    assert fast_normalize_email(raw) == expected
    assert fast_normalize_email(raw) == expected
