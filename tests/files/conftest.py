"""Files tests run on both storage backends: the local directory and S3 (moto)."""

from __future__ import annotations

import pytest

from atrium.config import Settings
from tests.conftest import s3_settings


@pytest.fixture
def settings(settings: Settings, storage_backend: str, request: pytest.FixtureRequest) -> Settings:
    if storage_backend == "s3":
        settings.storage = s3_settings(request.getfixturevalue("s3_server"))
    settings.files.max_bytes = 200_000
    return settings
