"""A step function of booked usage over time: the capacity calendar of one node (or namespace).

Segment k covers [times[k], times[k+1]) with usage cols[r][k] of resource r; the last segment
runs to +infinity with usage 0 (every booking ends). times[0] is a sentinel far in the past.
Columns are plain int lists, one per resource, so interval maxima are C-level `max(slice)`.

Queries take `need` and `free` (capacity outside bookings): a segment "violates" when its
usage exceeds free - need in any resource.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

NEG_INF = -(1 << 62)
INF = 1 << 62
RESOURCES = 5


class Timeline:
    __slots__ = ("times", "cols", "peak", "arrays")

    def __init__(self) -> None:
        self.times: list[int] = [NEG_INF]
        self.cols: tuple[list[int], ...] = tuple([0] for _ in range(RESOURCES))
        self.peak: list[int] = [0] * RESOURCES  # max usage over all time, per resource
        self.arrays = None  # numpy copies for vector.NodeArrays, dropped at every change

    # -- updates -------------------------------------------------------------------------

    def _split(self, t: int) -> int:
        """Make t a breakpoint; return its index."""
        times = self.times
        i = bisect_right(times, t) - 1
        if times[i] == t:
            return i
        times.insert(i + 1, t)
        for col in self.cols:
            col.insert(i + 1, col[i])
        return i + 1

    def _merge(self, k: int) -> None:
        """Drop breakpoint k if it does not change the level (keeps the function compact)."""
        if 0 < k < len(self.times) and all(col[k] == col[k - 1] for col in self.cols):
            del self.times[k]
            for col in self.cols:
                del col[k]

    def add(self, start: int, end: int, vector: Sequence[int], sign: int = 1) -> None:
        """Add (sign=1) or remove (sign=-1) `vector` over [start, end)."""
        self.arrays = None
        i = self._split(start)
        j = self._split(end)
        for r in range(RESOURCES):
            v = vector[r] * sign
            if v:
                col = self.cols[r]
                for k in range(i, j):
                    col[k] += v
                if sign > 0:
                    self.peak[r] = max(self.peak[r], max(col[i:j]))
                else:
                    self.peak[r] = max(col)
        self._merge(j)
        self._merge(i)

    # -- queries -------------------------------------------------------------------------

    def is_empty(self) -> bool:
        return len(self.times) == 1

    def max_over(self, start: int, end: int) -> list[int]:
        """Per resource, the highest usage anywhere in [start, end)."""
        times = self.times
        i = bisect_right(times, start) - 1
        j = bisect_left(times, end, i + 1)
        return [max(col[i:j]) for col in self.cols]

    def fits(self, need: Sequence[int], free: Sequence[int], start: int, end: int) -> bool:
        """`need` fits in `free` minus usage over the whole of [start, end)."""
        watched = self._watched(need, free)
        if watched:
            times = self.times
            i = bisect_right(times, start) - 1
            j = bisect_left(times, end, i + 1)
            for col, lim in watched:
                if max(col[i:j]) > lim:
                    return False
        return True

    def run_end(self, need: Sequence[int], free: Sequence[int], start: int, until: int) -> int:
        """The first instant >= start at which `need` no longer fits in `free` minus usage,
        or `until` if that does not happen before."""
        watched = self._watched(need, free)
        if not watched:
            return until
        times = self.times
        k = bisect_right(times, start) - 1
        n = len(times)
        while k < n and times[k] < until:
            for col, lim in watched:
                if col[k] > lim:
                    return max(start, times[k])
            k += 1
        return until

    def _watched(self, need: Sequence[int], free: Sequence[int]) -> list[tuple[list[int], int]]:
        """(column, limit) for the resources whose usage can exceed free - need somewhere.
        Unrolled: this runs once per node per query."""
        peak, cols = self.peak, self.cols
        out = []
        lim = free[0] - need[0]
        if peak[0] > lim:
            out.append((cols[0], lim))
        lim = free[1] - need[1]
        if peak[1] > lim:
            out.append((cols[1], lim))
        lim = free[2] - need[2]
        if peak[2] > lim:
            out.append((cols[2], lim))
        lim = free[3] - need[3]
        if peak[3] > lim:
            out.append((cols[3], lim))
        lim = free[4] - need[4]
        if peak[4] > lim:
            out.append((cols[4], lim))
        return out

    def earliest(self, need: Sequence[int], free: Sequence[int], duration: int,
                 windows: Sequence[tuple[int, int]], before: int = INF) -> int | None:
        """The earliest start t < before, inside some window [lo, hi] (sorted by lo), such that
        `need` fits in `free` minus usage over [t, t + duration). Candidates are the window
        openings and the breakpoints (exact: feasibility can only begin where usage drops or a
        window opens)."""
        if not windows or windows[0][0] >= before:
            return None
        watched = self._watched(need, free)
        if not watched:
            return windows[0][0]
        times = self.times
        for lo, hi in windows:
            if lo >= before:
                break
            if hi >= before:
                hi = before - 1
            t = lo
            while t <= hi:
                i = bisect_right(times, t) - 1
                j = bisect_left(times, t + duration, i + 1)
                # The last violating segment in [t, t+duration): every start before its end overlaps it.
                last = -1
                for col, lim in watched:
                    if max(col[i:j]) > lim:
                        k = j - 1
                        while col[k] <= lim:
                            k -= 1
                        if k > last:
                            last = k
                if last < 0:
                    return t
                if last + 1 >= len(times):
                    return None  # need > free: even the empty final segment violates
                t = times[last + 1]
        return None
