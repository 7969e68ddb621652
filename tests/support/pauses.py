"""The cyclic garbage collector's pauses in this test process, for telling a stalled client from a slow server.

A test worker's heap grows over a run; a full collection then stops the process (the client of a test) for as long
as it takes to scan it. A pause that long at the wrong moment looks like a server that answered late or never.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass, field

__all__ = ("LONG", "Pauses", "watch")

LONG = 0.5
"""Seconds from which a pause is worth reporting."""


@dataclass
class Pauses:
    longest: float = 0.0
    longest_generation: int = 0
    long_ones: int = 0
    recent: list[tuple[int, float]] = field(default_factory=list)  # (generation, seconds) since the last reset
    _started: float = 0.0

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        took = time.perf_counter() - self._started
        if took > self.longest:
            self.longest, self.longest_generation = took, info["generation"]
        if took >= LONG:
            self.long_ones += 1
            self.recent.append((info["generation"], took))


def watch() -> Pauses:
    """Start recording this process's collections."""
    pauses = Pauses()
    gc.callbacks.append(pauses.callback)
    return pauses
