"""One timer queue for every plan, instead of a coroutine per plan.

Each key (a plan's UID) is due at most once: `wake` makes it due now, `at` at a time (the
earlier of two times wins). Due keys wait in one line per urgency (`urgency(key)`, an index
into `pools`), each served in order by its own fixed number of workers, so the less urgent
can neither hold up the more urgent nor flood the API server alongside them; a line may have
a gate, which its workers pass before each step. A key is never stepped twice at once (woken
while running, it runs again right after). A step returns the seconds until it wants to run
again, or None for never; one that raises runs again after a back-off. Waiting keys cost a
heap entry each and no CPU, which is what lets 10,000 plans booked ahead sit idle.
"""
from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger("execplanner.operator.timerqueue")

Step = Callable[[str], Awaitable[float | None]]
Gate = Callable[[], Awaitable[None]]


class TimerQueue:
    def __init__(self, step: Step, pools: tuple[int, ...] = (64,), clock: Callable[[], float] = time.monotonic,
                 urgency: Callable[[str], int] = lambda key: 0, gates: tuple[Gate | None, ...] = ()) -> None:
        self.step, self.pools, self.clock, self.urgency = step, pools, clock, urgency
        self.gates = gates + (None,) * (len(pools) - len(gates))  # per line; None: no gate
        self._due: dict[str, float] = {}         # key -> when it is due (the earliest asked for)
        self._heap: list[tuple[float, str]] = []  # (when, key); stale entries are skipped
        self._ready: list[asyncio.Queue[str]] = [asyncio.Queue() for _ in pools]
        self._queued: set[str] = set()            # in _ready
        self._running: set[str] = set()
        self._again: set[str] = set()             # woken while running
        self._failures: dict[str, int] = {}
        self._changed = asyncio.Event()
        self.steps = 0

    def __len__(self) -> int:
        return len(self._due) + len(self._queued)

    def wake(self, key: str) -> None:
        """Run `key`'s step as soon as a worker is free."""
        if key in self._running:
            self._again.add(key)
        elif key not in self._queued:
            self._due.pop(key, None)
            self._queued.add(key)
            self._ready[min(max(self.urgency(key), 0), len(self._ready) - 1)].put_nowait(key)

    def at(self, key: str, delay: float) -> None:
        """Run `key`'s step in `delay` seconds (or earlier, if it is already due earlier)."""
        if key in self._queued:
            return
        when = self.clock() + max(0.0, delay)
        if key in self._due and self._due[key] <= when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, key))
        if self._heap[0][1] == key:
            self._changed.set()

    def forget(self, key: str) -> None:
        """No more timed steps for `key` (a wake still runs it)."""
        self._due.pop(key, None)
        self._failures.pop(key, None)

    async def run(self) -> None:
        """The clock and the workers, until cancelled."""
        tasks = [asyncio.ensure_future(self._clock())]
        tasks += [asyncio.ensure_future(self._work(line, gate))
                  for line, gate, n in zip(self._ready, self.gates, self.pools) for _ in range(n)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()

    async def _clock(self) -> None:
        while True:
            self._changed.clear()
            now = self.clock()
            while self._heap and self._heap[0][0] <= now:
                when, key = heapq.heappop(self._heap)
                if self._due.get(key) == when:
                    self.wake(key)
            timeout = self._heap[0][0] - now if self._heap else None
            try:
                await asyncio.wait_for(self._changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    async def _work(self, line: asyncio.Queue[str], gate: Gate | None) -> None:
        while True:
            key = await line.get()
            if gate is not None:
                await gate()  # (the key counts as queued meanwhile: a wake does not queue it twice)
            self._queued.discard(key)
            self._running.add(key)
            try:
                delay = await self.step(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the API server said no, or a bug: again, backing off
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                delay = min(30.0, 0.5 * 2 ** failures)
                log.warning("step of %s failed (%s); again in %.1fs", key, e, delay, exc_info=failures == 1)
            finally:
                self._running.discard(key)
            self.steps += 1
            if key in self._again:
                self._again.discard(key)
                self.wake(key)
            elif delay is not None:
                self.at(key, delay)
