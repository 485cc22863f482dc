"""Application start-up: the objects alive after it are frozen out of full collections."""

from __future__ import annotations

import gc
import subprocess
import sys

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


def _import_main_in_a_new_process(before: str) -> list[str]:
    """``import atrium.main`` in a new interpreter after ``before``; what it printed: the
    collector's state, how many collections ran during the import and how many objects
    are frozen after it."""
    code = (
        # The package's own __init__ (its version, from the installed metadata) first.
        f"import gc\nimport atrium\n{before}\n"
        "ran = sum(s['collections'] for s in gc.get_stats())\n"
        "import atrium.main\n"
        "print(gc.isenabled(), sum(s['collections'] for s in gc.get_stats()) - ran,"
        " gc.get_freeze_count())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_the_collector_waits_while_the_application_loads_then_skips_what_it_loaded() -> None:
    enabled, collections, frozen = _import_main_in_a_new_process("")
    assert enabled == "True"
    # Without the pause: ~530 collections over the ~300,000 objects being loaded.
    assert int(collections) < 5
    # ... which no later collection traverses again.
    assert int(frozen) > 100_000


def test_a_collector_disabled_before_the_import_stays_disabled() -> None:
    enabled, _, _ = _import_main_in_a_new_process("gc.disable()")
    assert enabled == "False"
