"""The cyclic garbage collector, paused while the application's modules load.

Importing :mod:`atrium.main` builds some 300,000 long-lived objects (modules, classes,
routes, schemas, mapped tables) and almost no garbage, while CPython's collector, run
every 700 net allocations, traverses the growing heap again and again: about 530
collections and 0.6 s of a 3 s import on a 2-core machine (measured with ``gc.callbacks``),
which every process start paid (``atrium serve`` and each of its workers, ``atrium
worker``, every CLI command that loads the application).

Importing this module pauses the collector (``gc.disable``, as the Python documentation
of ``gc.freeze`` advises for a process's start-up); :mod:`atrium.main` imports it before
anything else and calls :func:`resume` at the end of its own import, which moves what the
import created into the permanent generation (``gc.freeze``) before the collector runs
again: the loaded modules, classes and routes live as long as the process, and no later
collection traverses them. Reference counting still frees everything that is not in a
cycle meanwhile; the few cycles the import leaves (about 1,800 objects, 0.7 MiB, measured)
stay, where collecting them would cost a full traversal of the heap (~0.3 s) at every
start. The server then freezes what its start-up created as well
(:func:`atrium.main.freeze_startup_objects`, setting ``gc_freeze``).
"""

from __future__ import annotations

import gc

_WAS_ENABLED = gc.isenabled()
gc.disable()


def resume() -> None:
    """Freeze what the import created and re-enable the collector, unless it was already
    disabled before the pause (an embedding process's choice is kept)."""
    gc.freeze()
    if _WAS_ENABLED:
        gc.enable()
