"""Offers over time: when, and how big, a request can run.

Start times are exact: a request can only start to fit where a window opens or where booked
usage (on a node, or in the namespace's quota) drops, so those breakpoints are the only
candidates, never a grid. Holds count as booked until their end.

Offer order (deterministic):
  1. the earliest start at which the minimum fits for the minimum duration, sized up at that
     start (most cores, then memory, then GPUs, up to the maxima) and run as long as that size
     still fits (up to the maximum duration);
  2. alternatives trading start time for size/duration, by start: maximum size (extended as
     far as it fits), minimum size for the maximum duration (sized up), maximum size for the
     maximum duration; an alternative is dropped when an earlier offer dominates it (starts no
     later, nothing smaller, runs no shorter);
  3. alternatives in time, when fewer than asked for remain and the client named at most one
     start window: the earliest offer (sized as the first) starting once every offer so far
     has ended, again and again. They are not pruned as dominated (a later start is what a
     client choosing a slot wants), and they never overlap one another, so all of them can be
     held at once. Several named windows are several slots instead: one offer each.
`minimal` asks for exactly the minimum at the earliest start: one offer.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from execplanner.api.units import format_instant

from .capacity import Capacity, NodeState
from .filters import PodFilter, Toleration
from .fit import (Assignment, PodRequest, candidates, excluded_reasons, filter_failure, filter_reasons, place_set)
from .reasons import Reason, amount, shortfall_reasons, shortness
from .resources import NAMES, Resources, total
from .timeline import INF
from .vector import node_arrays

Windows = list[tuple[int, int]]


@dataclass(frozen=True)
class Range:
    min: int
    max: int

    def __post_init__(self) -> None:
        if self.min < 0 or self.max < self.min:
            raise ValueError(f"range {self.min}..{self.max} is empty or negative")

    @staticmethod
    def of(low: int, high: int | None = None) -> Range:
        """max defaults to min."""
        return Range(low, low if high is None else high)


@dataclass(frozen=True)
class Request:
    """A flexible single pod (cpu/memory/gpu ranges) or a fixed pod set (`pods`), for a duration
    range, starting inside one of `windows` ([earliest, latest] start, epoch seconds)."""

    cpu: Range = Range(0, 0)  # millicores
    memory: Range = Range(0, 0)  # bytes
    gpu: Range = Range(0, 0)
    duration: Range = Range(3600, 3600)  # seconds
    windows: tuple[tuple[int, int], ...] | None = None  # None: [now, now + calendar horizon]
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    minimal: bool = False
    pods: tuple[PodRequest, ...] | None = None  # a fixed pod set instead of the ranges
    ephemeral: int = 0  # bytes of ephemeral-storage for the flexible pod
    name: str = "main"  # the flexible pod's name in placements


def question_key(r: Request) -> tuple:
    """Every field of the request, hashable (mappings as sorted pairs), for Calendar.offers to
    recognise a question asked again. (A unit test changes each field of Request in turn and
    checks that the key changes: a field added later cannot be forgotten here.)"""
    pods = None if r.pods is None else tuple(
        (p.name, p.requests, tuple(sorted(p.node_selector.items())), p.tolerations) for p in r.pods)
    return (r.cpu, r.memory, r.gpu, r.duration, r.windows, tuple(sorted(r.node_selector.items())), r.tolerations,
            r.minimal, pods, r.ephemeral, r.name)


@dataclass(frozen=True)
class Offer:
    start: int
    end: int
    cpu: int  # millicores, summed over pods
    memory: int  # bytes
    gpu: int
    assignments: tuple[Assignment, ...]  # pod -> node, with the pod's vector
    vector: Resources | None = None  # the size chosen for a flexible single pod

    @property
    def duration(self) -> int:
        return self.end - self.start

    @property
    def placements(self) -> list[tuple[str, Resources]]:
        """(node, vector) pairs, as Capacity.book takes them."""
        return [(a.node, a.requests) for a in self.assignments]

    def dominates(self, other: Offer) -> bool:
        return (self.start <= other.start and self.duration >= other.duration and self.cpu >= other.cpu
                and self.memory >= other.memory and self.gpu >= other.gpu)


@dataclass(frozen=True)
class OfferResult:
    """Offers, or the reasons there are none. Calendar.offers may hand the same result to
    several callers: read it, do not change it."""

    offers: list[Offer]
    reasons: list[Reason]


# -- windows ----------------------------------------------------------------------------------

def windows_for(request: Request, now: int, horizon: int) -> Windows:
    """Start windows clipped to now, sorted and merged."""
    raw = request.windows if request.windows else ((now, now + horizon),)
    return clip([(max(lo, now), hi) for lo, hi in raw], now)


def clip(windows: Sequence[tuple[int, int]], after: int) -> Windows:
    """The parts of `windows` at or after `after`, sorted and merged."""
    out: Windows = []
    for lo, hi in sorted(windows):
        lo = max(lo, after)
        if lo > hi:
            continue
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


# -- searches (single pod) ---------------------------------------------------------------------

def _earliest_on_nodes(cal: Capacity, need: Resources, flt: PodFilter, duration: int, windows: Windows) -> int | None:
    """The earliest start in `windows` at which some node holds `need` for `duration`.
    Largest nodes first (likely earliest), and each node only looks before the best so far."""
    if not windows:
        return None
    first = windows[0][0]
    next_open = windows[1][0] if len(windows) > 1 else INF
    best = INF
    for node in candidates(cal, need, flt, descending=True):
        tl = node.timeline
        if best < INF and next_open >= best:
            # Cheap skip, the common case once something was found: the node is too busy at the
            # first opening (CPU, memory or GPU at that instant) and its usage does not change
            # before the best start so far, so it cannot start earlier.
            times = tl.times
            k = bisect_right(times, first)
            if k == len(times) or times[k] >= best:
                f = node.free
                c = tl.cols
                if (c[0][k - 1] > f[0] - need[0] or c[1][k - 1] > f[1] - need[1]
                        or c[2][k - 1] > f[2] - need[2]):
                    continue
        t = tl.earliest(need, node.free, duration, windows, best)
        if t is not None:
            best = t
            if t == first:
                break  # nothing can start earlier
    return best if best < INF else None


def earliest(cal: Capacity, need: Resources, flt: PodFilter, duration: int, windows: Windows,
             namespace: str | None) -> int | None:
    """The earliest start where a node and the namespace's quota both hold `need` for `duration`.
    Alternates between the two constraints; each step only moves forward to a feasible time of
    one of them, so the first agreement is the earliest common start."""
    quota = cal.quota_of(namespace)
    if quota is not None and not need.fits(quota):
        return None
    while windows:
        t = _earliest_on_nodes(cal, need, flt, duration, windows)
        if t is None or quota is None:
            return t
        tq = cal.ns_timeline(namespace).earliest(need, quota, duration, clip(windows, t))  # type: ignore[arg-type]
        if tq == t or tq is None:
            return tq
        windows = clip(windows, tq)
    return None


def _quota_room(cal: Capacity, namespace: str | None, start: int, end: int) -> Resources | None:
    quota = cal.quota_of(namespace)
    if quota is None:
        return None
    used = cal.ns_timeline(namespace).max_over(start, end)  # type: ignore[arg-type]
    return Resources(*(q - u for q, u in zip(quota, used)))


def size_at(cal: Capacity, low: Resources, high: Resources, flt: PodFilter, start: int, duration: int,
            namespace: str | None) -> Resources | None:
    """The biggest size between `low` and `high` (most cores, then memory, then GPUs) that some
    node and the quota hold over [start, start + duration)."""
    end = start + duration
    room = _quota_room(cal, namespace, start, end)
    if room is not None:
        high = high.minimum(room)
        if not low.fits(high):
            return None
    arrays = node_arrays(cal)  # many nodes may have to be looked at: in numpy, not a Python loop
    low_col = np.asarray(low, np.int64)[:, None]
    best: tuple[int, ...] | None = None
    for lo, hi in arrays.spans(descending=True):
        if best is not None and arrays.free[0, hi - 1] < best[0]:
            break  # nodes are by free CPU: none further can offer more cores
        free = arrays.free_over(start, end, lo, hi)
        ok = arrays.passing(flt)[lo:hi] & (free >= low_col).all(axis=0)
        if not ok.any():
            continue
        size = []  # the greatest min(high, free) in order: most cores, then memory, then GPUs
        for r in range(3):
            level = np.where(ok, np.minimum(free[r], high[r]), -1)
            size.append(int(level.max()))
            ok &= level == size[-1]
        if best is None or tuple(size) > best:
            best = tuple(size)
            if best == high[:3]:
                break  # nothing can be bigger
    return None if best is None else Resources(best[0], best[1], best[2], low[3], low[4])


def longest(cal: Capacity, size: Resources, flt: PodFilter, start: int, min_duration: int, max_duration: int,
            namespace: str | None) -> tuple[int, NodeState] | None:
    """The longest run (its duration, up to max_duration) from `start` for `size`, and the tightest
    node giving it."""
    until = start + max_duration
    quota = cal.quota_of(namespace)
    if quota is not None:
        until = cal.ns_timeline(namespace).run_end(size, quota, start, until)  # type: ignore[arg-type]
    # The longest run wins; among nodes that tie, the best fit (fit.best_fit_key: fewest spare
    # GPUs, then cores, memory, name). Once some node gives the full run, only a bounded sample
    # of the candidates after it is scored, as in fit.place_one.
    arrays = node_arrays(cal)
    scored_pos, scored_ends = [], []
    seen, cutoff = 0, None  # candidates so far; how many of them may be scored
    for lo, hi in arrays.spans():  # tightest first, as fit.candidates
        pos = arrays.candidates(size, flt, lo, hi)
        ends = arrays.run_end(pos, size, start, until, lo, hi)
        ok = ends - start >= min_duration
        if cutoff is None:
            full = np.flatnonzero(ok & (ends == until))
            if len(full):
                cutoff = seen + int(full[0]) + cal.score_sample + 1
        if cutoff is not None:
            ok[max(0, cutoff - seen):] = False
        scored_pos.append(pos[ok])
        scored_ends.append(ends[ok])
        seen += len(pos)
        if cutoff is not None and seen >= cutoff:
            break
    p = np.concatenate(scored_pos) if scored_pos else np.zeros(0, np.int64)
    if not len(p):
        return None
    ends = np.concatenate(scored_ends)
    left = arrays.free[:, p] - np.asarray(size, np.int64)[:, None]
    best = np.lexsort((arrays.name_rank[p], left[1], left[0], left[2], -ends))[0]
    return int(ends[best]) - start, arrays.nodes[p[best]]


# -- offers -----------------------------------------------------------------------------------

def offers(cal: Capacity, request: Request, now: int, count: int = 3, namespace: str | None = None) -> OfferResult:
    """Up to `count` offers for `request`, or the reasons there is none."""
    if request.duration.min <= 0:
        return OfferResult([], [Reason("window", "the minimum duration must be positive")])
    windows = windows_for(request, now, cal.horizon)
    if not windows:
        return OfferResult([], [Reason("window", "every start window is in the past")])
    if request.pods is not None:
        return _pod_set_offers(cal, request, windows, count, namespace)
    return _flexible_offers(cal, request, windows, count, namespace)


def _single(request: Request, size: Resources, start: int, duration: int, node: NodeState) -> Offer:
    return Offer(start, start + duration, size[0], size[1], size[2],
                 (Assignment(request.name, node.name, size),), size)


def _pick(first: Offer, alternatives: list[Offer], count: int, windows: Windows | None = None) -> list[Offer]:
    """The first offer, then alternatives no chosen offer dominates. With several start windows,
    an offer only competes with those in its own window: a client that names three slots
    may prefer the later one, however good the first."""
    def window(o: Offer) -> int:
        return next((i for i, (lo, hi) in enumerate(windows or ()) if lo <= o.start <= hi), -1)

    chosen = [first]
    for offer in sorted(alternatives, key=lambda o: (o.start, -o.cpu, -o.memory, -o.gpu, -o.duration)):
        if len(chosen) >= count:
            break
        if not any(c.dominates(offer) and window(c) == window(offer) for c in chosen):
            chosen.append(offer)
    return chosen[:count]


def _in_time(chosen: list[Offer], count: int, windows: Windows, at: Callable[[Windows], Offer | None]) -> list[Offer]:
    """`chosen`, then alternatives in time up to `count`: each `at` the windows from the end of
    every offer so far (the earliest offer starting once they have all ended). Only for at most
    one window: several windows are several slots, one offer each."""
    if len(windows) > 1:
        return chosen
    out = list(chosen)
    while len(out) < count:
        later = clip(windows, max(o.end for o in out))
        offer = at(later) if later else None
        if offer is None:
            break
        out.append(offer)
    return out


def _flexible_offers(cal: Capacity, request: Request, windows: Windows, count: int, namespace: str | None) -> OfferResult:
    low = Resources(request.cpu.min, request.memory.min, request.gpu.min, request.ephemeral, 1)
    high = Resources(request.cpu.max, request.memory.max, request.gpu.max, request.ephemeral, 1)
    dmin, dmax = request.duration.min, request.duration.max
    flt = PodFilter.of(request.node_selector, request.tolerations)

    def sized(start: int | None, size_low: Resources, size_high: Resources, d_low: int, d_high: int) -> Offer | None:
        if start is None:
            return None
        # A fixed size needs no search: `start` came from `earliest`, which found it fits there.
        size = size_low if size_low == size_high else size_at(cal, size_low, size_high, flt, start, d_low, namespace)
        run = longest(cal, size, flt, start, d_low, d_high, namespace) if size is not None else None
        return _single(request, size, start, run[0], run[1]) if run and size else None

    t1 = earliest(cal, low, flt, dmin, windows, namespace)
    if t1 is None:
        return OfferResult([], no_offer_reasons(cal, low, flt, dmin, windows, namespace))
    if request.minimal:
        first = sized(t1, low, low, dmin, dmin)
        assert first is not None
        return OfferResult([first], [])
    first = sized(t1, low, high, dmin, dmax)
    assert first is not None, "the earliest start must be placeable"
    if count <= 1:
        return OfferResult([first], [])
    # The best start in each further window the client named (one time slot per offer).
    per_window = [sized(earliest(cal, low, flt, dmin, [w], namespace), low, high, dmin, dmax)
                  for w in windows if not w[0] <= t1 <= w[1]]
    per_window = [o for o in per_window if o is not None]

    def next_slot(ws: Windows) -> Offer | None:
        return sized(earliest(cal, low, flt, dmin, ws, namespace), low, high, dmin, dmax)

    if high == low and dmax == dmin:
        return OfferResult(_in_time(_pick(first, per_window, count, windows), count, windows, next_slot), [])
    later = clip(windows, t1)
    t_big = earliest(cal, high, flt, dmin, later, namespace)
    t_long = earliest(cal, low, flt, dmax, later, namespace)
    t_both = None
    if t_big is not None and t_long is not None:
        t_both = earliest(cal, high, flt, dmax, clip(windows, max(t_big, t_long)), namespace)
    alternatives = [o for o in (
        sized(t_big, high, high, dmin, dmax),
        sized(t_long, low, high, dmax, dmax),
        sized(t_both, high, high, dmax, dmax),
    ) if o is not None]
    return OfferResult(_in_time(_pick(first, alternatives + per_window, count, windows), count, windows, next_slot), [])


def no_offer_reasons(cal: Capacity, need: Resources, flt: PodFilter, duration: int, windows: Windows,
                     namespace: str | None, prefix: str = "") -> list[Reason]:
    """Why `need` never fits for `duration` inside the windows."""
    blocked = filter_reasons(cal, flt, prefix)
    if blocked:
        return blocked
    quota = cal.quota_of(namespace)
    if quota is not None:
        for r in range(3):
            if need[r] > quota[r]:
                limit = quota[r]
                return [Reason("quota", f"{prefix}over quota: {NAMES[r]}: needs {amount(NAMES[r], need[r])}, "
                               f"namespace {namespace} may book {amount(NAMES[r], limit)} at most",
                               resource=NAMES[r], needed=need[r], available=limit, namespace=namespace)]
        t = _earliest_on_nodes(cal, need, flt, duration, windows)
        if t is not None:  # the nodes could, so the quota is what blocks it
            return [Reason(r.kind, prefix + r.message, r.resource, r.needed, r.available, r.node, r.namespace, r.at)
                    for r in cal.quota_reasons(namespace, need, t, t + duration)]  # type: ignore[arg-type]
    # The closest any node comes, at any candidate start in the windows.
    best: tuple | None = None
    for node in cal.nodes.values():
        if filter_failure(node, flt) is not None:
            continue
        starts = {lo for lo, _ in windows}
        times = node.timeline.times
        for lo, hi in windows:
            starts.update(times[bisect_right(times, lo):bisect_right(times, hi)])
        for t in sorted(starts):
            free = node.free_over(t, t + duration)
            key = (*shortness(need, free, node.allocatable), t, node.name)
            if best is None or key < best[0]:
                best = (key, node.name, free, t)
    assert best is not None, "filter_reasons returned nothing, so some node passes the filters"
    _, name, free, t = best
    out = shortfall_reasons(need, free, name, t, t + duration, prefix)
    out += excluded_reasons(cal, need, flt, lambda node: node.free, prefix)
    return out or [Reason("capacity", f"{prefix}no start in the windows fits")]


# -- fixed pod sets (charts) --------------------------------------------------------------------

def _pod_set_offers(cal: Capacity, request: Request, windows: Windows, count: int, namespace: str | None) -> OfferResult:
    pods = tuple(request.pods or ())
    dmin, dmax = request.duration.min, request.duration.max
    if not pods:
        return OfferResult([], [Reason("window", "the pod set is empty")])
    first = _pod_set_earliest(cal, pods, dmin, dmax, windows, namespace)
    if isinstance(first, list):
        return OfferResult([], first)
    if count <= 1 or request.minimal:
        return OfferResult([first], [])

    def at(ws: Windows, shortest: int = dmin) -> Offer | None:
        found = _pod_set_earliest(cal, pods, shortest, dmax, ws, namespace) if ws else None
        return found if isinstance(found, Offer) else None

    alternatives = []
    if dmax != dmin and first.duration != dmax:
        alternatives.append(at(clip(windows, first.start), dmax))
    # The earliest start in each further window the client named (one time slot per offer).
    alternatives += [at([w]) for w in windows if not w[0] <= first.start <= w[1]]
    chosen = _pick(first, [o for o in alternatives if o is not None], count, windows)
    return OfferResult(_in_time(chosen, count, windows, at), [])


def _pod_set_earliest(cal: Capacity, pods: tuple[PodRequest, ...], dmin: int, dmax: int, windows: Windows,
                      namespace: str | None) -> Offer | list[Reason]:
    """The earliest start where the set fits for dmin (placed as `fit` places it), run as long as
    the same placement holds (up to dmax). Candidate starts: window openings and breakpoints;
    each pod alone must fit first, which gives a lower bound and lets the search skip ahead."""
    need_total = total(p.requests for p in pods)
    quota = cal.quota_of(namespace)
    if quota is not None and not need_total.fits(quota):
        return no_offer_reasons(cal, need_total, PodFilter(), dmin, windows, namespace, "the pod set: ")
    same = _identical(pods)
    if same is not None:
        held = _identical_room(cal, same, lambda node: node.free)
        if 0 < sum(held.values()) < len(pods):  # (none at all: the pod alone says why, below)
            return [_identical_reason(same, len(pods), held, "the {nodes} that may run them hold at most {most} at "
                                      "once ({where}); {short} short")]
    distinct = list({(p.requests, tuple(sorted(p.node_selector.items())), p.tolerations): p for p in pods}.values())
    all_windows = windows
    t: int | None = windows[0][0]
    breakpoints: list[int] | None = None
    while t is not None:
        windows = clip(windows, t)
        for pod in distinct:  # skip to where every pod fits alone
            tp = earliest(cal, pod.requests, pod.filter, dmin, windows, None)
            if tp is None:
                return no_offer_reasons(cal, pod.requests, pod.filter, dmin, windows, None, f"pod {pod.name}: ")
            windows = clip(windows, tp)
        if quota is not None:
            tq = cal.ns_timeline(namespace).earliest(need_total, quota, dmin, windows)  # type: ignore[arg-type]
            if tq is None:
                return no_offer_reasons(cal, need_total, PodFilter(), dmin, windows, namespace, "the pod set: ")
            windows = clip(windows, tq)
        if not windows:
            break
        t = windows[0][0]
        placed = place_set(cal, pods, t, t + dmin)
        if placed:
            end = _pod_set_run_end(cal, placed.assignments, t, t + dmax, namespace, need_total)
            return Offer(t, end, need_total[0], need_total[1], need_total[2], placed.assignments)
        if breakpoints is None:
            breakpoints = _all_breakpoints(cal, windows, namespace)
        t = _next_after(breakpoints, t)
    if same is not None:
        return [_identical_at_best(cal, same, len(pods), dmin, _all_breakpoints(cal, all_windows, namespace))]
    return [Reason("capacity", "the pod set does not fit together on the nodes at any start in the windows "
                               "(each pod fits alone; sets are placed greedily beyond 8 pods)")]


def _identical(pods: Sequence[PodRequest]) -> PodRequest | None:
    """The one pod of a set of identical pods (a workshop's sessions), or None."""
    first = pods[0]
    for p in pods[1:]:
        if p.requests != first.requests or p.tolerations != first.tolerations or \
                dict(p.node_selector) != dict(first.node_selector):
            return None
    return first


def _identical_room(cal: Capacity, pod: PodRequest, free_of) -> dict[str, int]:
    """How many copies of `pod` each node that may run it holds, given its free room."""
    need, flt, out = pod.requests, pod.filter, {}
    for node in cal.nodes.values():
        if filter_failure(node, flt) is not None:
            continue
        free = free_of(node)
        out[node.name] = max(0, min(free[r] // need[r] for r in range(5) if need[r] > 0))
    return out


def _identical_reason(pod: PodRequest, count: int, held: dict[str, int], says: str, at: int | None = None) -> Reason:
    """Why `count` copies of `pod` do not fit: how many the nodes hold, where, and how many short."""
    need = pod.requests
    size = ", ".join(amount(NAMES[r], need[r]) for r in range(3) if need[r] or r < 2)
    all_in = ", ".join(amount(NAMES[r], need[r] * count) for r in range(3) if need[r] or r < 2)
    most = sum(held.values())
    groups: dict[int, list[str]] = {}
    for name, n in held.items():
        if n:
            groups.setdefault(n, []).append(name)
    where = ", ".join(f"{n} on {names[0]}" if len(names) == 1 else f"{n} each on {len(names)} nodes"
                      for n, names in sorted(groups.items(), reverse=True)) or "none anywhere"
    nodes = f"{len(held)} node{'s' if len(held) != 1 else ''}"
    message = f"{count} pods of {size} each ({all_in} in all): " + says.format(
        nodes=nodes, most=most, where=where, short=count - most, at=format_instant(at) if at is not None else "")
    return Reason("capacity", message, resource="pods", needed=count, available=most, at=at)


def _identical_at_best(cal: Capacity, pod: PodRequest, count: int, duration: int, starts: list[int]) -> Reason:
    """The most copies of `pod` that fit at once at any of `starts` (the earliest such start)."""
    best: tuple[int, int, dict[str, int]] | None = None
    for t in starts:
        held = _identical_room(cal, pod, lambda node: node.free_over(t, t + duration))
        if best is None or sum(held.values()) > best[0]:
            best = (sum(held.values()), t, held)
    assert best is not None, "the windows are not empty"
    return _identical_reason(pod, count, best[2], "at most {most} fit at once at any start in the windows (the most "
                             "from {at}: {where}); {short} short", at=best[1])


def _pod_set_run_end(cal: Capacity, assignments: Sequence[Assignment], start: int, until: int,
                     namespace: str | None, need_total: Resources) -> int:
    per_node: dict[str, Resources] = {}
    for a in assignments:
        per_node[a.node] = per_node[a.node] + a.requests if a.node in per_node else a.requests
    end = until
    for name, vector in per_node.items():
        node = cal.nodes[name]
        end = node.timeline.run_end(vector, node.free, start, end)
    quota = cal.quota_of(namespace)
    if quota is not None:
        end = cal.ns_timeline(namespace).run_end(need_total, quota, start, end)  # type: ignore[arg-type]
    return end


def _all_breakpoints(cal: Capacity, windows: Windows, namespace: str | None) -> list[int]:
    lo, hi = windows[0][0], windows[-1][1]
    points: set[int] = {w[0] for w in windows}
    timelines = [n.timeline for n in cal.by_cpu]
    if namespace is not None and namespace in cal.quotas:
        timelines.append(cal.ns_timeline(namespace))
    for tl in timelines:
        times = tl.times
        points.update(times[bisect_right(times, lo):bisect_right(times, hi)])
    return sorted(points)


def _next_after(points: list[int], t: int) -> int | None:
    k = bisect_right(points, t)
    return points[k] if k < len(points) else None
