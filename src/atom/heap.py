"""Long-lived objects kept out of the garbage collector's full collections.

A full collection walks every tracked object that is not frozen. What a process allocates once and
keeps for its whole life (modules, the app, caches, an SDK's classes) would be walked again at every
one, which shows as pauses of tens to hundreds of milliseconds on a busy server: every live chat
waits for them. `settle` collects what is garbage now and freezes the rest.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect, then exempt every object alive now from later collections (they are kept, never walked).

    Call it when a process has allocated what it keeps: after start, and after a large lazy import.
    What is alive only for a moment (a request in flight) is kept too, once: call it rarely."""
    gc.collect()
    gc.freeze()
