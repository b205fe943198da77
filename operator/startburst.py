"""While a burst of task pods is starting, the operator's record of it waits.

At a start instant shared by many bookings (a workshop), every task pod becomes Running
through one status write of its kubelet (kwok's, here), and those writes are the start
itself: the booked start is kept when they land. The operator's record of the same starts
is two writes per task (the plan's Running, the TaskRun's EXECUTING), and a custom
resource's status write costs the API server several times a pod's. Made during the burst,
the record took a fifth of the API server's CPU from the pods' writes (its profile over the
first 5 s of a 500-task start). So the line of record steps (state.STEP_WORKERS' last) holds
while task pods are still turning Running, and goes once they have paused for QUIET_S, or
once the burst has held it MAX_HOLD_S (steady starts never hold it longer than that).

Pure bookkeeping; the clock is injected.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

QUIET_S = 0.5      # no task pod turned Running for this long: the burst is over
MAX_HOLD_S = 10.0  # a burst holds the record back at most this long from its first start


class StartBurst:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._began: float | None = None  # the first start of the current burst
        self._last: float | None = None   # the latest start seen

    def started(self) -> None:
        """A task pod was seen turning Running."""
        now = self.clock()
        if self._last is None or now - self._last >= QUIET_S:
            self._began = now
        self._last = now

    def hold(self) -> float:
        """Seconds the record should still wait (0: go now)."""
        if self._last is None or self._began is None:
            return 0.0
        return max(0.0, min(self._last + QUIET_S, self._began + MAX_HOLD_S) - self.clock())

    async def wait(self) -> None:
        """Return once the record may go (at once, when no burst is on)."""
        while (delay := self.hold()) > 0:
            await asyncio.sleep(delay)
