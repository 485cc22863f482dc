"""`atrium serve` raises its open-files limit for the streams it holds."""

from __future__ import annotations

import resource

import pytest

from atrium.cli import raise_open_files_limit


def test_the_open_files_limit_is_raised_up_to_the_hard_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limits = {"soft": 1024, "hard": 20_000}

    def getrlimit(_: int) -> tuple[int, int]:
        return limits["soft"], limits["hard"]

    def setrlimit(_: int, value: tuple[int, int]) -> None:
        limits["soft"], limits["hard"] = value

    monkeypatch.setattr(resource, "getrlimit", getrlimit)
    monkeypatch.setattr(resource, "setrlimit", setrlimit)

    assert raise_open_files_limit(17_408) == 17_408
    assert raise_open_files_limit(50_000) == 20_000  # never past the hard limit
    assert raise_open_files_limit(100) == 20_000  # never lowered
    assert limits == {"soft": 20_000, "hard": 20_000}
