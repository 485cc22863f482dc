"""docs/apps/raffles.md documents every setting of the application's group."""

from __future__ import annotations

from pathlib import Path

from atrium.apps.raffles.settings import RafflesSettings
from tests.test_docs import _env_names, documented_variables

ROOT = Path(__file__).resolve().parents[3]


def test_every_raffles_setting_is_documented() -> None:
    documented = documented_variables((ROOT / "docs" / "apps" / "raffles.md").read_text())

    assert sorted(documented) == sorted(_env_names(RafflesSettings, "ATRIUM_RAFFLES__"))
