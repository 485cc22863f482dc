"""The cyclic garbage collector, paused while the application's modules load.

Importing :mod:`atrium.main` builds some 300,000 long-lived objects (modules, classes,
routes, schemas, mapped tables) and almost no garbage, while CPython's collector, run
every 700 net allocations, traverses the growing heap again and again: about 530
collections and 0.6 s of a 3 s import on a 2-core machine (measured with ``gc.callbacks``),
which every process start paid (``atrium serve`` and each of its workers, ``atrium
worker``, every CLI command that loads the application).

Importing this module pauses the collector (``gc.disable``, as the Python documentation
of ``gc.freeze`` advises for a process's start-up); :mod:`atrium.main` imports it before
anything else and calls :func:`resume` at the end of its own import. Reference counting
still frees everything that is not in a cycle meanwhile; the cycles left by the import
(about 1,800 objects) are collected by the first collection after it, which traverses the
loaded objects once (~0.2 s) instead of hundreds of times. The server then collects again
and freezes what survived (:func:`atrium.main.freeze_startup_objects`, setting
``gc_freeze``).
"""

from __future__ import annotations

import gc

_WAS_ENABLED = gc.isenabled()
gc.disable()


def resume() -> None:
    """Re-enable the collector, unless it was already disabled before the pause (an
    embedding process's choice is kept). Idempotent."""
    if _WAS_ENABLED:
        gc.enable()
