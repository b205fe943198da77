"""Sizing a helm chart for the planner's answers: render it (helm pull, then helm template, as
the operator will), check its images against the allowlist, and count its footprint over the
nodes the cache knows.

A render is bounded work: at most ChartSettings.render_concurrency run at once
(EXECPLANNER_RENDER_CONCURRENCY), at most render_queue more wait for a slot, and beyond that
a question is answered at once with Busy (the HTTP layer's 429 with Retry-After); each render
has a deadline and a size limit on the chart it downloads (cluster/charts.py). Renders are
remembered for a few minutes per chart, values and namespace, least recently used first out
when the memo is full, so repeated questions about one chart cost one helm run; the same
question asked again while its render runs waits for that render instead of starting
another. `cached` says whether an answer can be given without any render at all (the
planner's anonymous callers get only those, or charts from an allowlisted repository).
"""
from __future__ import annotations

import asyncio
import json
import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from execplanner.cluster import allowlist, charts
from execplanner.engine import Calendar

TTL = 300.0
ENTRIES = 256

Rendered = list[dict[str, Any]]


class Refused(Exception):
    """The chart cannot be run here; the message says why (helm's own message for renders)."""


class Busy(Exception):
    """Every render slot is taken and the queue is full: ask again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Abandoned(Exception):
    """The render another question waited for was stopped (its own asker went away)."""


class ChartSizer:
    def __init__(self, cfg: charts.ChartSettings | None = None, *, entries: int = ENTRIES, ttl: float = TTL) -> None:
        self.cfg = cfg or charts.ChartSettings()
        self.entries, self.ttl = entries, ttl
        self._memo: OrderedDict[str, tuple[float, Rendered | Refused]] = OrderedDict()
        self._running: dict[str, asyncio.Future] = {}  # key -> the render under way for it
        self._slots: asyncio.Semaphore | None = None
        self.active = 0   # renders running now
        self.waiting = 0  # renders waiting for a slot
        self.renders = 0  # renders started, ever (for tests and metrics)
        self._seconds = 2.0  # a running estimate of one render's length, for Retry-After

    # -- the answers ------------------------------------------------------------------------------

    def key(self, ref: charts.ChartRef, values: Mapping[str, Any], namespace: str) -> str:
        return json.dumps([ref.chart, ref.repository, ref.version, values, namespace], sort_keys=True, default=str)

    def cached(self, ref: charts.ChartRef, values: Mapping[str, Any], namespace: str) -> bool:
        """An answer for this chart, values and namespace is remembered (no render needed)."""
        return self._lookup(self.key(ref, values, namespace)) is not None

    async def footprint(self, cal: Calendar, ref: charts.ChartRef, values: Mapping[str, Any],
                        namespace: str) -> charts.Footprint:
        manifests = await self._render(ref, values, namespace)
        nodes = [charts.NodeInfo(n.name, n.labels, n.taints) for n in cal.nodes.values()]
        try:
            fp = charts.footprint(manifests, nodes, refuse_missing=True)
        except charts.FootprintError as e:
            raise Refused(f"chart {ref}: {e}") from None
        if fp.count == 0:
            raise Refused(f"chart {ref} creates no pods: there is nothing to run")
        return fp

    # -- the memo (least recently used out first) --------------------------------------------------------

    def _lookup(self, key: str) -> tuple[float, Rendered | Refused] | None:
        hit = self._memo.get(key)
        if hit is None:
            return None
        if time.monotonic() - hit[0] >= self.ttl:
            del self._memo[key]
            return None
        self._memo.move_to_end(key)
        return hit

    def _remember(self, key: str, result: Rendered | Refused) -> None:
        self._memo[key] = (time.monotonic(), result)
        self._memo.move_to_end(key)
        while len(self._memo) > self.entries:
            self._memo.popitem(last=False)

    # -- rendering, bounded ---------------------------------------------------------------------------

    async def _render(self, ref: charts.ChartRef, values: Mapping[str, Any], namespace: str) -> Rendered:
        key = self.key(ref, values, namespace)
        while True:
            hit = self._lookup(key)
            if hit is not None:
                result = hit[1]
                break
            running = self._running.get(key)
            if running is None:
                result = await self._render_once(key, ref, values, namespace)
                break
            try:  # the same question is being rendered: wait for that render
                result = await asyncio.shield(running)
                break
            except _Abandoned:  # its asker went away and it was stopped: render again
                continue
        if isinstance(result, Refused):
            raise result
        return result

    async def _render_once(self, key: str, ref: charts.ChartRef, values: Mapping[str, Any],
                           namespace: str) -> Rendered | Refused:
        cfg = self.cfg
        if self._slots is None:
            self._slots = asyncio.Semaphore(cfg.render_concurrency)
        if self.active + self.waiting >= cfg.render_concurrency + cfg.render_queue:
            raise Busy(f"the planner is rendering {self.active} charts with {self.waiting} more waiting (at most "
                       f"{cfg.render_concurrency} at once and {cfg.render_queue} waiting); ask again shortly",
                       self.retry_after())
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            self.waiting += 1
            try:
                await self._slots.acquire()
            finally:
                self.waiting -= 1
            self.active += 1
            self.renders += 1
            started = time.monotonic()
            try:
                result = await self._helm(ref, values, namespace)
            finally:
                self.active -= 1
                self._slots.release()
                self._seconds = 0.7 * self._seconds + 0.3 * (time.monotonic() - started)
            self._remember(key, result)
            done.set_result(result)
            return result
        except BaseException as e:
            if not done.done():
                done.set_exception(e if isinstance(e, Exception) and not isinstance(e, asyncio.CancelledError)
                                   else _Abandoned())
                done.exception()  # retrieved: no "never retrieved" warning when nobody else waits
            raise
        finally:
            if self._running.get(key) is done:
                del self._running[key]

    async def _helm(self, ref: charts.ChartRef, values: Mapping[str, Any], namespace: str) -> Rendered | Refused:
        try:
            manifests = await charts.render(ref, values, "xp-sizing", namespace, cfg=self.cfg)
        except charts.HelmError as e:
            return Refused(f"helm could not render chart {ref}: {e}")
        bad = next((f"{where}: {why}" for where, image in charts.images(manifests)
                    if (why := allowlist.image_allowed(image))), None)
        return Refused(bad) if bad else manifests

    def retry_after(self) -> int:
        """Seconds until a slot is likely free: the renders ahead, at the recent pace."""
        ahead = (self.active + self.waiting) / max(1, self.cfg.render_concurrency)
        return max(1, min(60, math.ceil(ahead * self._seconds)))
