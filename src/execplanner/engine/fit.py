"""Placing a set of pods on nodes over an interval.

Filtering (selector, taints, readiness, capacity over the whole interval) is exact. Scoring
follows kube-scheduler's idea of scoring a bounded sample of feasible nodes
(percentageOfNodesToScore): nodes are visited tightest-first (by free capacity outside
bookings) and the best fit among the first `Capacity.score_sample` feasible ones wins, so the
cost does not grow with the cluster. A single pod is placed whenever any node can hold it.
A pod set is placed by first-fit-decreasing with best-fit node choice; if that fails on a small
instance (<= 8 pods, <= 12 usable nodes) an exact backtracking search with a step budget
decides. Beyond that the answer is greedy: "no fit" may be wrong for tightly packed sets.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .capacity import Capacity, NodeState
from .filters import PodFilter, Toleration, selector_matches, untolerated
from .reasons import Reason, shortfall_reasons, shortness
from .resources import ZERO, Resources, total

EXACT_MAX_PODS = 8
EXACT_MAX_NODES = 12
EXACT_STEP_BUDGET = 200_000


@dataclass(frozen=True)
class PodRequest:
    name: str
    requests: Resources  # effective requests, pods=1 (see resources.pod_requests)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    @property
    def filter(self) -> PodFilter:
        return PodFilter.of(self.node_selector, self.tolerations)


class Assignment(NamedTuple):
    pod: str
    node: str
    requests: Resources


@dataclass(frozen=True)
class Placement:
    start: int
    end: int
    assignments: tuple[Assignment, ...]

    @property
    def placements(self) -> list[tuple[str, Resources]]:
        """(node, vector) pairs, as Capacity.book takes them."""
        return [(a.node, a.requests) for a in self.assignments]

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class NoFit:
    reasons: tuple[Reason, ...]

    @property
    def message(self) -> str:
        return "; ".join(r.message for r in self.reasons)

    def __bool__(self) -> bool:
        return False


# -- node candidates -------------------------------------------------------------------------

def filter_failure(node: NodeState, flt: PodFilter) -> str | None:
    """Why `node` cannot take a pod with this filter, or None. The one place filters are decided."""
    if not node.ready:
        return "not ready"
    if node.unschedulable:
        return "unschedulable"
    if flt.node_selector and not selector_matches(dict(flt.node_selector), node.labels):
        return "node selector"
    if node.hard_taints:
        taint = untolerated(node.hard_taints, flt.tolerations)
        if taint is not None:
            return f"taint {taint}"
    return None


def candidates(cal: Capacity, need: Resources, flt: PodFilter, descending: bool = False) -> Iterator[NodeState]:
    """Schedulable nodes passing the filters whose free capacity outside bookings holds `need`,
    tightest first (or largest first). Nodes with too little CPU are skipped by bisection."""
    index = cal.gpu_by_cpu if need[2] > 0 else cal.by_cpu
    selector, tolerations = flt
    for node in index.irange_key(min_key=(need[0], ""), reverse=descending):
        f = node.free
        if f[1] < need[1] or f[2] < need[2] or f[3] < need[3] or f[4] < need[4]:
            continue
        if selector:
            labels = node.labels
            if any(labels.get(k) != v for k, v in selector):
                continue
        if node.hard_taints and untolerated(node.hard_taints, tolerations) is not None:
            continue
        yield node


def best_fit_key(left: Resources, name: str) -> tuple[int, int, int, str]:
    # Tightest node wins: leftover GPUs first (keep GPU nodes for GPU work), then cores, memory.
    return (left[2], left[0], left[1], name)


def place_one(cal: Capacity, need: Resources, flt: PodFilter, start: int, end: int,
              taken: Mapping[str, Resources] | None = None) -> NodeState | None:
    """The best-fit node among the first `score_sample` feasible ones; None if no node can hold it."""
    best: tuple | None = None
    found = 0
    for node in candidates(cal, need, flt):
        if taken and node.name in taken:
            free = node.free_over(start, end) - taken[node.name]
            if not need.fits(free):
                continue
        else:
            if not node.timeline.fits(need, node.free, start, end):
                continue
            free = node.free_over(start, end)
        score = best_fit_key(free - need, node.name)
        if best is None or score < best[0]:
            best = (score, node)
        found += 1
        if found >= cal.score_sample:
            break
    return best[1] if best else None


# -- fit --------------------------------------------------------------------------------------

def fit(cal: Capacity, pods: Sequence[PodRequest], start: int, end: int, namespace: str | None = None) -> Placement | NoFit:
    """Place `pods` for the whole of [start, end), within the namespace's quota."""
    if end <= start:
        return NoFit((Reason("window", "the interval is empty (end <= start)"),))
    if not pods:
        return Placement(start, end, ())
    if namespace is not None:
        over = cal.quota_reasons(namespace, total(p.requests for p in pods), start, end)
        if over:
            return NoFit(tuple(over))
    if len(pods) == 1:
        pod = pods[0]
        node = place_one(cal, pod.requests, pod.filter, start, end)
        if node is None:
            return NoFit(tuple(pod_reasons(cal, pod.requests, pod.filter, start, end)))
        return Placement(start, end, (Assignment(pod.name, node.name, pod.requests),))
    return place_set(cal, pods, start, end)


def _ffd_order(pods: Sequence[PodRequest]) -> list[PodRequest]:
    return sorted(pods, key=lambda p: (-p.requests[2], -p.requests[0], -p.requests[1], p.name))


def place_set(cal: Capacity, pods: Sequence[PodRequest], start: int, end: int) -> Placement | NoFit:
    order = _ffd_order(pods)
    taken: dict[str, Resources] = {}
    chosen: list[Assignment] = []
    for pod in order:
        node = place_one(cal, pod.requests, pod.filter, start, end, taken)
        if node is None:
            exact = _exact(cal, order, start, end)
            if exact is not None:
                return exact
            return NoFit(tuple(_set_reasons(cal, order, pod, taken, start, end)))
        taken[node.name] = taken.get(node.name, ZERO) + pod.requests
        chosen.append(Assignment(pod.name, node.name, pod.requests))
    return Placement(start, end, tuple(chosen))


def _exact(cal: Capacity, order: list[PodRequest], start: int, end: int) -> Placement | None:
    """Backtracking over small instances; None if none found (or too big / over budget)."""
    if len(order) > EXACT_MAX_PODS:
        return None
    usable: dict[str, tuple[NodeState, Resources]] = {}
    for pod in order:
        for node in candidates(cal, pod.requests, pod.filter):
            if node.name not in usable:
                free = node.free_over(start, end)
                if pod.requests.fits(free):
                    usable[node.name] = (node, free)
                    if len(usable) > EXACT_MAX_NODES:
                        return None
    names = sorted(usable)
    eligible = [[n for n in names if pod.requests.fits(usable[n][1])
                 and candidates_ok(usable[n][0], pod.filter)] for pod in order]
    avail = {n: usable[n][1] for n in names}
    picks: list[str] = []
    steps = 0

    def search(i: int) -> bool:
        nonlocal steps
        if i == len(order):
            return True
        need = order[i].requests
        seen: set[tuple] = set()
        for n in eligible[i]:
            steps += 1
            if steps > EXACT_STEP_BUDGET:
                return False
            a = avail[n]
            if not need.fits(a):
                continue
            # Two nodes with the same room and the same eligibility for the rest are interchangeable.
            signature = (a, tuple(n in eligible[k] for k in range(i + 1, len(order))))
            if signature in seen:
                continue
            seen.add(signature)
            avail[n] = a - need
            picks.append(n)
            if search(i + 1):
                return True
            picks.pop()
            avail[n] = a
        return False

    if not search(0):
        return None
    return Placement(start, end, tuple(Assignment(p.name, n, p.requests) for p, n in zip(order, picks)))


def candidates_ok(node: NodeState, flt: PodFilter) -> bool:
    return filter_failure(node, flt) is None


# -- reasons ----------------------------------------------------------------------------------

def filter_reasons(cal: Capacity, flt: PodFilter, prefix: str = "") -> list[Reason]:
    """Why no node passes the filters (counts per filter), or [] if some node does."""
    if not cal.nodes:
        return [Reason("nodes", f"{prefix}the cluster has no nodes")]
    counts: dict[str, int] = {}
    taints: set[str] = set()
    for node in cal.nodes.values():
        why = filter_failure(node, flt)
        if why is None:
            return []
        key = "taint" if why.startswith("taint") else why
        if key == "taint":
            taints.add(why.removeprefix("taint "))
        counts[key] = counts.get(key, 0) + 1
    details = {
        "not ready": "not ready",
        "unschedulable": "cordoned (unschedulable)",
        "node selector": f"not matching the node selector {dict(flt.node_selector)}",
        "taint": f"with taints the pod does not tolerate ({', '.join(sorted(taints))})",
    }
    parts = [f"{n} node{'s' if n != 1 else ''} {details[k]}" for k, n in sorted(counts.items())]
    return [Reason("filter", f"{prefix}no node passes the filters: " + ", ".join(parts))]


def pod_reasons(cal: Capacity, need: Resources, flt: PodFilter, start: int, end: int,
                taken: Mapping[str, Resources] | None = None, prefix: str = "") -> list[Reason]:
    """Why one pod does not fit over [start, end): filters, or the shortfall on the closest node."""
    blocked = filter_reasons(cal, flt, prefix)
    if blocked:
        return blocked
    best: tuple | None = None
    for node in cal.nodes.values():
        if filter_failure(node, flt) is not None:
            continue
        free = node.free_over(start, end) - (taken or {}).get(node.name, ZERO)
        key = (*shortness(need, free, node.allocatable), node.name)
        if best is None or key < best[0]:
            best = (key, node.name, free)
    assert best is not None
    return shortfall_reasons(need, best[2], best[1], start, end, prefix) + excluded_reasons(
        cal, need, flt, lambda node: node.free_over(start, end) - (taken or {}).get(node.name, ZERO), prefix)


def excluded_reasons(cal: Capacity, need: Resources, flt: PodFilter, free_of: Callable[[NodeState], Resources],
                     prefix: str = "") -> list[Reason]:
    """Nodes that would have room but a filter keeps out: often the actionable part."""
    excluded = []
    for node in cal.nodes.values():
        why = filter_failure(node, flt)
        if why is not None and need.fits(free_of(node)):
            excluded.append(f"{node.name} ({why})")
    if not excluded:
        return []
    excluded.sort()
    more = f" and {len(excluded) - 3} more" if len(excluded) > 3 else ""
    return [Reason("filter", f"{prefix}nodes with room are excluded by filters: {', '.join(excluded[:3])}{more}")]


def _set_reasons(cal: Capacity, order: list[PodRequest], failed: PodRequest, taken: Mapping[str, Resources],
                 start: int, end: int) -> list[Reason]:
    alone = pod_reasons(cal, failed.requests, failed.filter, start, end, prefix=f"pod {failed.name}: ")
    if alone and alone[0].kind != "capacity":
        return alone
    if place_one(cal, failed.requests, failed.filter, start, end) is None:
        return alone  # does not fit even on an empty cluster's worth of free room
    note = "" if len(order) <= EXACT_MAX_PODS else " (pod sets over 8 pods are placed greedily)"
    return pod_reasons(cal, failed.requests, failed.filter, start, end, taken,
                       prefix=f"pod {failed.name}, after placing the larger pods{note}: ")
