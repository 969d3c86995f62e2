"""Process-wide tuning applied once a server or worker has started."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Exempt what startup allocated (modules, the app, caches) from garbage collection.

    Those objects live as long as the process; left in the collector's oldest generation, every
    full collection walks them all again, which shows as pauses on a busy server or worker.
    """
    gc.collect()
    gc.freeze()
