"""Application start-up: the objects alive after it are frozen out of full collections."""

from __future__ import annotations

import gc

import pytest

from atrium.config import Settings
from atrium.main import create_app


@pytest.mark.parametrize("freeze", [True, False])
async def test_startup_freezes_the_objects_alive_after_it(settings: Settings, freeze: bool) -> None:
    app = create_app(settings.model_copy(update={"gc_freeze": freeze}))
    gc.unfreeze()
    try:
        async with app.router.lifespan_context(app):
            frozen = gc.get_freeze_count()
            collectable = any(o is app.state.ctx for o in gc.get_objects())
    finally:
        # The rest of the test process: the loaded code frozen again (tests/conftest.py).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
    if freeze:
        assert frozen > 10_000  # the loaded application, not a handful of objects
        assert not collectable  # the context left the generations a collection scans
    else:
        assert frozen == 0
        assert collectable


def test_freezing_is_on_by_default() -> None:
    assert Settings(_env_file=None).gc_freeze is True  # type: ignore[call-arg]
