"""The nodes' calendars as flat arrays, for the questions that may have to look at every node.

`size_at` ("the biggest size any node holds over [start, end)") and `longest` ("the longest
run from start, and the tightest node giving it") can seldom stop early on a busy cluster:
every node is partly booked, so most must be looked at. A Python loop costs about a
microsecond per node; numpy does the same work in C over arrays built once per calendar
change, a range of nodes at a time (`spans`) so that the searches still stop where they can.

Layout: the schedulable nodes in `Capacity.by_cpu` order (position p); node p's timeline
occupies [seg_start[p], seg_end[p]) of `times` and `slack` (one row per resource: the
node's free capacity minus the segment's usage), and `keys` = p * SPAN + time sorts the
whole thing, so one searchsorted finds every node's segment at an instant. The arrays are
a read-only copy: the calendar drops them whenever a node, a pod or a booking changes, and
node_arrays makes them again (after a booking, from the last ones: NodeArrays.updated). offers.size_at / offers.longest say what is searched; this module only
computes it, and tests/unit/engine/reference.py holds the plain loops it must agree with.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .capacity import Capacity, NodeState
from .filters import PodFilter
from .fit import filter_failure
from .timeline import RESOURCES, Timeline

FIRST_SPAN = 64  # nodes in the first range a search looks at (see NodeArrays.spans)
SPAN = 1 << 35  # seconds per node in `keys` (beyond the year 3000); nodes up to 2**18
CAP = (1 << 62) - 1  # larger quantities are unlimited for any question asked
SPLICE_MAX = 16  # more nodes' timelines changed than this: build the arrays anew


def _ints(values: Sequence[int]) -> np.ndarray:
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:  # an absurd capacity: it is unlimited for every question
        return np.array([min(max(v, -CAP), CAP) for v in values], dtype=np.int64)


def timeline_arrays(tl: Timeline) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times, cols, peak) of one timeline, cached on it until it changes."""
    cached = tl.arrays
    if cached is None:
        times = np.clip(_ints(tl.times), 0, SPAN - 1)  # the sentinel far in the past becomes 0
        cached = tl.arrays = (times, np.stack([_ints(c) for c in tl.cols]), _ints(tl.peak))
    return cached


class NodeArrays:
    """A columnar copy of the schedulable nodes' calendars (see the module's docstring)."""

    def __init__(self, nodes: Sequence[NodeState], by_order: dict[str, Any] | None = None) -> None:
        """`by_order`: what depends on the nodes and their order alone (their free capacity
        outside bookings, their names' ranks, filter masks), shared by every NodeArrays built
        for that order, so that a booking's rebuild redoes only the timelines (`updated`)."""
        self.nodes = list(nodes)
        n = len(self.nodes)
        self._by_order = by_order = {} if by_order is None else by_order
        self._parts = parts = [timeline_arrays(node.timeline) for node in self.nodes]
        if "free" not in by_order:
            by_order["free"] = _ints([v for node in self.nodes for v in node.free]).reshape(n, RESOURCES).T.copy()
        self.free = by_order["free"]
        self.times = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        self.peak = np.stack([p[2] for p in parts], axis=1) if parts else np.zeros((RESOURCES, 0), np.int64)
        lengths = np.fromiter((len(p[0]) for p in parts), np.int64, n)
        node_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
        # What is left per segment: the node's free capacity minus the segment's usage. One
        # column past the end, as reduceat may be given the index len(times).
        cols = np.concatenate([p[1] for p in parts] + [np.zeros((RESOURCES, 1), np.int64)], axis=1)
        self.slack = np.concatenate([self.free[:, node_of], np.zeros((RESOURCES, 1), np.int64)], axis=1) - cols
        if "name_rank" not in by_order:
            order = sorted(range(n), key=lambda p: self.nodes[p].name)
            by_order["name_rank"] = np.empty(n, np.int64)
            by_order["name_rank"][order] = np.arange(n)
        self._index(lengths, node_of)

    def _index(self, lengths: np.ndarray, node_of: np.ndarray | None = None) -> None:
        """What follows from times, slack, peak and each node's number of segments."""
        n = len(self.nodes)
        self.lengths = lengths
        self.seg_end = np.cumsum(lengths)
        self.seg_start = self.seg_end - lengths
        self.node_of = np.repeat(np.arange(n, dtype=np.int64), lengths) if node_of is None else node_of
        self.keys = self.node_of * SPAN + self.times
        self.booked_rows = [r for r in range(RESOURCES) if n and self.peak[r].max() > 0]
        # Per resource, the least any node has left at its busiest: a need above it may end a run.
        self.least_slack = (self.free - self.peak).min(axis=1) if n else np.zeros(RESOURCES, np.int64)
        self.name_rank = self._by_order["name_rank"]
        self._filters: dict[PodFilter, np.ndarray] = self._by_order.setdefault("masks", {})
        # Answers for one interval are asked again and again (most questions start "now"):
        # kept until the calendar changes, which drops these arrays altogether.
        self._free_over: dict[tuple[int, int, int, int], np.ndarray] = {}
        self._too_full: dict[tuple[int, ...], np.ndarray] = {}

    def updated(self) -> NodeArrays:
        """These arrays after a change of the calendar that kept its nodes, their order and
        free capacity (a booking's: `by_order` still holds): the timelines that changed since
        (each Timeline drops its cached arrays when it changes) are spliced in, a few numpy
        calls each instead of a rebuild's work per node. In a burst of bookings that work
        was 15 % of the operator's busy time."""
        changed = [p for p, (node, part) in enumerate(zip(self.nodes, self._parts)) if node.timeline.arrays is not part]
        if not changed:
            return self
        if len(changed) > SPLICE_MAX:
            return NodeArrays(self.nodes, self._by_order)
        new = object.__new__(NodeArrays)
        new.nodes, new._by_order, new.free = self.nodes, self._by_order, self.free
        new._parts = parts = list(self._parts)
        times, slack, peak, lengths = self.times, self.slack, self.peak.copy(), self.lengths.copy()
        for p in reversed(changed):  # from the end: the segments before p keep their places
            parts[p] = t, cols, top = timeline_arrays(self.nodes[p].timeline)
            a, b = int(self.seg_start[p]), int(self.seg_end[p])
            times = np.concatenate([times[:a], t, times[b:]])
            slack = np.concatenate([slack[:, :a], self.free[:, p:p + 1] - cols, slack[:, b:]], axis=1)
            peak[:, p] = top
            lengths[p] = len(t)
        new.times, new.slack, new.peak = times, slack, peak
        new._index(lengths)
        return new

    def spans(self, descending: bool = False) -> Iterator[tuple[int, int]]:
        """Position ranges [lo, hi) covering every node, smallest first (64 nodes, then doubling),
        from the tight end or (descending) the large end: a search that can stop early looks
        at few nodes, one that cannot still makes few numpy calls."""
        n, size = len(self.nodes), FIRST_SPAN
        edge = n if descending else 0
        while (edge > 0) if descending else (edge < n):
            lo, hi = (max(0, edge - size), edge) if descending else (edge, min(n, edge + size))
            yield lo, hi
            edge = lo if descending else hi
            size *= 2

    def passing(self, flt: PodFilter) -> np.ndarray:
        """Per node, whether it passes the filters (fit.filter_failure)."""
        mask = self._filters.get(flt)
        if mask is None:
            mask = self._filters[flt] = np.fromiter((filter_failure(node, flt) is None for node in self.nodes),
                                                    bool, len(self.nodes))
        return mask

    def candidates(self, need: Sequence[int], flt: PodFilter, lo: int, hi: int) -> np.ndarray:
        """Positions in [lo, hi) (ascending, as fit.candidates yields them) of the nodes passing
        the filters whose free capacity outside bookings holds `need`."""
        fits = (self.free[:, lo:hi] >= np.asarray(need, np.int64)[:, None]).all(axis=0)
        return lo + np.flatnonzero(self.passing(flt)[lo:hi] & fits)

    def free_over(self, start: int, end: int, lo: int, hi: int) -> np.ndarray:
        """Per resource (rows) and node in [lo, hi) (columns), what is left for new bookings
        over the whole of [start, end): NodeState.free_over for many nodes at once."""
        key = (start, end, lo, hi)
        known = self._free_over.get(key)
        if known is not None:
            return known
        out = self.free[:, lo:hi].copy()
        rows = self.booked_rows  # the others are never booked: free all along
        if rows and hi > lo:
            a, b = int(self.seg_start[lo]), int(self.seg_end[hi - 1])
            keys, base = self.keys[a:b], np.arange(lo, hi, dtype=np.int64) * SPAN
            i = np.searchsorted(keys, base + min(start, SPAN - 1), side="right") - 1
            j = np.maximum(np.searchsorted(keys, base + min(end, SPAN - 1), side="left"), i + 1)
            bounds = np.empty(2 * len(i), np.int64)
            bounds[0::2], bounds[1::2] = i, j
            # Through b inclusive: j may be b - a (the slice's end); that column is never reduced.
            out[rows] = np.minimum.reduceat(self.slack[rows, a:b + 1], bounds, axis=1)[:, 0::2]
        if len(self._free_over) >= 1024:
            self._free_over.clear()
        self._free_over[key] = out
        return out

    def run_end(self, pos: np.ndarray, need: Sequence[int], start: int, until: int, lo: int, hi: int) -> np.ndarray:
        """Per node in `pos` (all within [lo, hi)): Timeline.run_end, the first instant >= start
        at which `need` no longer fits in free minus usage, or `until` if not before."""
        hits = self._segments_too_full(need, lo, hi)
        if not len(hits) or not len(pos):
            return np.full(len(pos), until, np.int64)
        first_at = np.searchsorted(self.keys, pos * SPAN + min(start, SPAN - 1), side="right") - 1
        k = np.minimum(np.searchsorted(hits, first_at), len(hits) - 1)
        hit = hits[k]
        found = (hit >= first_at) & (hit < self.seg_end[pos])
        t = self.times[hit]
        return np.where(found & (t < until), np.maximum(t, start), until)

    def _segments_too_full(self, need: Sequence[int], lo: int, hi: int) -> np.ndarray:
        """Indices of the segments of nodes [lo, hi) whose slack is below `need` in some resource."""
        # Only resources some node runs short of can matter (Timeline._watched).
        watched = [r for r in self.booked_rows if need[r] > self.least_slack[r]]
        key = (lo, hi, *(need[r] if r in watched else -1 for r in range(RESOURCES)))
        hits = self._too_full.get(key)
        if hits is None:
            a, b = (int(self.seg_start[lo]), int(self.seg_end[hi - 1])) if hi > lo else (0, 0)
            violates = np.zeros(b - a, bool)
            for r in watched:
                violates |= self.slack[r, a:b] < need[r]
            hits = a + np.flatnonzero(violates)
            if len(self._too_full) >= 1024:
                self._too_full.clear()
            self._too_full[key] = hits
        return hits


def node_arrays(cap: Capacity) -> NodeArrays:
    """The schedulable nodes' calendars as arrays, made at most once between changes: the last
    ones updated while the nodes and their order stand (cap.node_derived), else built anew."""
    arrays = cap.derived.get("arrays")
    if arrays is None:
        last = cap.node_derived.get("arrays")
        arrays = last.updated() if last is not None else NodeArrays(cap.by_cpu, cap.node_derived)
        cap.derived["arrays"] = cap.node_derived["arrays"] = arrays
    return arrays
