"""How long a task booked to start "now" really takes to run: the start the operator books.

A plan booked for an immediate start gets its pods only once the operator has launched the
launches queued ahead of it, and its pod runs a start-up later (scheduling, the kubelet). In
a burst that is seconds: 400 plans at once made their pods up to 11 s after the booked start
(`make bench-peers PEER=kueue`, the queued stream), so the booked start was a poor
prediction. Booking the start at now plus this estimate keeps the booked start the instant
the task runs: its pod is made at once and waits (its init container) for that start.

The estimate is measured, never configured: the launches not yet made, at the rate launches
were made over the last few seconds, plus the median start-up of recent task pods (from
their creation, or their start if they waited for it, to their container's start, all three
read from the pod itself: the operator's own lag in seeing the pod does not count). Pure
bookkeeping; the clock is injected.
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 5.0          # the launch rate is measured over this much of the recent past
MIN_LAUNCHES = 5        # fewer launches than that in the window: no rate to speak of
SAMPLES = 50            # start-ups remembered
MAX_DELAY_S = 120.0     # never predict further out than this (a stalled API server)


class StartDelay:
    def __init__(self, workers: int, clock: Callable[[], float] = time.time) -> None:
        self.workers, self.clock = workers, clock
        self._unlaunched: set[str] = set()         # booked to start now, pods not made yet
        self._launches: deque[float] = deque()     # when recent launches were done
        self._launch_s: deque[float] = deque(maxlen=SAMPLES)  # how long each launch took
        self._startups: deque[float] = deque(maxlen=SAMPLES)  # pod could run -> its container ran

    def estimate(self) -> float:
        """Seconds from now until a task booked now would run."""
        startup = statistics.median(self._startups) if self._startups else 0.0
        waiting = len(self._unlaunched)
        if not waiting:
            return startup
        now = self.clock()
        while self._launches and self._launches[0] < now - WINDOW_S:
            self._launches.popleft()
        if len(self._launches) >= MIN_LAUNCHES:
            rate = len(self._launches) / max(now - self._launches[0], 1.0)
        elif self._launch_s:  # quiet until now: as many at once as there are workers
            rate = self.workers / max(statistics.median(self._launch_s), 1e-3)
        else:
            return startup
        return min(startup + waiting / rate, MAX_DELAY_S)

    def booked_now(self, uid: str) -> None:
        """`uid` was booked to start within the hold lead: its launch is due."""
        self._unlaunched.add(uid)

    def launched(self, uid: str, took: float) -> None:
        """`uid`'s pods were made (the launch took `took` s)."""
        self._unlaunched.discard(uid)
        self._launches.append(self.clock())
        self._launch_s.append(took)

    def started(self, could_run: float, ran: float) -> None:
        """A task pod that could run from `could_run` (made, or its start if later) ran at `ran`."""
        self._startups.append(max(ran - could_run, 0.0))

    def forget(self, uid: str) -> None:
        self._unlaunched.discard(uid)
