"""The API key format: prefix, fixed-width base62 body, CRC32 checksum, keyed digest."""

from __future__ import annotations

import zlib

from atrium.core import apikeys


def test_a_key_is_the_prefix_43_base62_characters_and_a_6_character_checksum() -> None:
    key = apikeys.generate()

    assert key.startswith("atr_pat_")
    assert len(key) == len("atr_pat_") + 43 + 6 == apikeys.KEY_LENGTH
    assert all(c in apikeys.ALPHABET for c in key[len("atr_pat_") :])


def test_the_checksum_is_the_crc32_of_the_body_in_base62() -> None:
    key = apikeys.generate()
    body, check = key[8:51], key[51:]

    value = 0
    for c in check:
        value = value * 62 + apikeys.ALPHABET.index(c)
    assert value == zlib.crc32(body.encode())


def test_keys_are_distinct() -> None:
    assert len({apikeys.generate() for _ in range(1000)}) == 1000


def test_a_generated_key_is_well_formed() -> None:
    assert apikeys.is_well_formed(apikeys.generate())


def test_one_changed_character_breaks_the_checksum() -> None:
    key = apikeys.generate()
    position = 20
    other = "A" if key[position] != "A" else "B"
    broken = key[:position] + other + key[position + 1 :]

    assert not apikeys.is_well_formed(broken)


def test_wrong_length_prefix_or_alphabet_is_not_well_formed() -> None:
    key = apikeys.generate()

    assert not apikeys.is_well_formed(key[:-1])
    assert not apikeys.is_well_formed(key + "0")
    assert not apikeys.is_well_formed("atr_xyz_" + key[8:])
    assert not apikeys.is_well_formed(key[:30] + "-" + key[31:])


def test_the_digest_is_an_hmac_sha256_that_depends_on_the_secret() -> None:
    key = apikeys.generate()

    assert len(apikeys.digest(key, b"one")) == 32
    assert apikeys.digest(key, b"one") == apikeys.digest(key, b"one")
    assert apikeys.digest(key, b"one") != apikeys.digest(key, b"two")


def test_the_display_prefix_is_short_of_the_key() -> None:
    key = apikeys.generate()

    assert apikeys.display_prefix(key) == key[:16]
