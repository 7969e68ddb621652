"""Keeping what start-up built out of the cyclic collector's scans while one app serves."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ("startup_objects_frozen",)


@contextlib.contextmanager
def startup_objects_frozen() -> Iterator[None]:
    """Keep what imports and start-up built out of the cyclic collector's scans while serving.

    That is about 140 000 objects which live as long as the app. Under load the collector's full pass came about
    every second (requests in flight get promoted to its oldest generation) and scanned them all with the GIL
    held: 70-100 ms on a slow core, which was the whole of the creates' p99. Frozen, a full pass scans only what
    was made since. The young generations are collected first, which is where start-up's garbage is, so little
    is frozen; not the full pass itself, which cost 0.3 s at every start of a process that had built and thawed
    apps before (the tests build a thousand). Thawed at shutdown.

    Only for a process that serves one app (``freeze_heap``, which ``sessiongate serve`` sets). One that builds app
    after app (a test worker) froze the garbage of each app it was done with into the next one's permanent
    generation before any full pass could free it: a full run's test worker grew past 2 GB, and its collector, once
    it did scan that heap, stopped it for up to 21 s.
    """
    gc.collect(1)
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
