"""The calendar's data: nodes, the pods on them, bookings over time, and per-namespace quota.
fit.py and offers.py search it; calendar.Calendar puts the searches beside it.

Invariant (kept by every call, verified from scratch by `check_invariant`): on every node, at
every instant at which something is booked there, base pod requests + bookings <= allocatable;
and for every namespace with a quota, its bookings summed at any instant stay within it.

"Base" usage is the effective requests of the pods on a node, with no known end, except pods
that carry the id of a booking that places something on that node: the booking already holds
their capacity. Reality may change under bookings (a node shrinks or leaves, a foreign pod
lands); the calendar accepts it and revokes bookings, most recently booked first, until the
invariant holds again. Revocations are returned by the call and also logged (drain_revocations).
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, NamedTuple

from sortedcontainers import SortedKeyList, SortedList

from .filters import Taint, hard_taints
from .quota import UNLIMITED
from .reasons import Reason, amount, quota_reason, span
from .resources import NAMES, ZERO, Resources, total
from .timeline import Timeline

DAY = 86400


class Conflict(ValueError):
    """A booking that would break the invariant (or reuses an id with different content)."""

    def __init__(self, reasons: list[Reason]) -> None:
        super().__init__("; ".join(r.message for r in reasons))
        self.reasons = reasons


class NodeState:
    """One node as the calendar sees it. `free` = allocatable - base: what bookings may use."""

    __slots__ = ("name", "allocatable", "labels", "taints", "hard_taints", "ready", "unschedulable",
                 "base", "free", "timeline", "bookings", "pods")

    def __init__(self, name: str, allocatable: Resources, labels: Mapping[str, str],
                 taints: Sequence[Taint], ready: bool, unschedulable: bool) -> None:
        self.name = name
        self.allocatable = allocatable
        self.labels = dict(labels)
        self.taints = tuple(taints)
        self.hard_taints = hard_taints(taints)
        self.ready = ready
        self.unschedulable = unschedulable
        self.base = ZERO
        self.free = allocatable
        self.timeline = Timeline()
        self.bookings: set[str] = set()
        self.pods: set[str] = set()

    def same_as(self, other: NodeState) -> bool:
        """Same capacity, labels, taints and readiness (what the calendar reads of a node)."""
        return (self.allocatable == other.allocatable and self.labels == other.labels
                and self.taints == other.taints and self.ready == other.ready
                and self.unschedulable == other.unschedulable)

    @property
    def schedulable(self) -> bool:
        """A candidate for new placements."""
        return self.ready and not self.unschedulable

    def free_over(self, start: int, end: int) -> Resources:
        """What is left for new bookings over the whole of [start, end)."""
        used = self.timeline.max_over(start, end)
        f = self.free
        return Resources(f[0] - used[0], f[1] - used[1], f[2] - used[2], f[3] - used[3], f[4] - used[4])


class PodState(NamedTuple):
    node: str
    requests: Resources
    booking_id: str | None


@dataclass(frozen=True)
class Booking:
    id: str
    namespace: str
    start: int
    end: int
    placements: tuple[tuple[str, Resources], ...]  # (node, vector) per pod, several may share a node
    expires: int | None = None  # a tentative hold until confirmed, released or expired
    seq: int = field(default=0, compare=False)  # booking order: revocation takes the newest first
    # When its own pods began to hold the capacity, if before `start` (they are made a lead
    # ahead and wait for it): from then on the capacity is taken, though the booking starts later.
    held_from: int | None = field(default=None, compare=False)

    @property
    def span_start(self) -> int:
        """Where the booking's capacity is taken from: its start, or earlier once its pods hold it."""
        return self.start if self.held_from is None else min(self.start, self.held_from)

    @cached_property
    def per_node(self) -> dict[str, Resources]:
        out: dict[str, Resources] = {}
        for node, vector in self.placements:
            out[node] = out[node] + vector if node in out else vector
        return out

    @cached_property
    def total(self) -> Resources:
        return total(v for _, v in self.placements)

    def same_request(self, other: Booking) -> bool:
        """Same content, ignoring hold expiry (a replay may carry a stale or no expiry)."""
        return (self.namespace == other.namespace and self.start == other.start and self.end == other.end
                and sorted(self.placements) == sorted(other.placements))


@dataclass(frozen=True)
class Revocation:
    booking_id: str
    reason: str


def _node_key(node: NodeState) -> tuple[int, str]:
    return (node.free[0], node.name)


class Capacity:
    """The cluster state the planner reasons over. Not thread-safe: one writer at a time."""

    def __init__(self, horizon: int = 7 * DAY, score_sample: int = 50) -> None:
        self.horizon = horizon  # default search window when a request gives none
        self.score_sample = score_sample  # feasible nodes scored per pod (kube's percentageOfNodesToScore)
        self.nodes: dict[str, NodeState] = {}
        self.pods: dict[str, PodState] = {}
        self.bookings: dict[str, Booking] = {}
        self.quotas: dict[str, Resources] = {}
        # Schedulable nodes by static free CPU, so a query skips nodes too small by bisection.
        self.by_cpu: SortedKeyList = SortedKeyList(key=_node_key)
        self.gpu_by_cpu: SortedKeyList = SortedKeyList(key=_node_key)  # those with GPUs
        self._pods_by_booking: dict[str, set[str]] = {}
        self._pods_by_node: dict[str, set[str]] = {}
        self._ns_bookings: dict[str, set[str]] = {}
        self._ns_timelines: dict[str, Timeline] = {}  # only for namespaces with a quota
        self._ends: SortedList = SortedList()  # (end, id)
        self._holds: SortedList = SortedList()  # (expires, id)
        self._seq = 0
        self._log: list[Revocation] = []
        # What searches derived from this state (vector.node_arrays, Calendar.offers' answers),
        # kept until anything changes.
        self.derived: dict[str, Any] = {}
        # What they derived from the schedulable nodes and their order (vector's filter masks,
        # and the last arrays, which a booking's change updates instead of rebuilding): kept
        # across bookings, dropped whenever a node is indexed again.
        self.node_derived: dict[str, Any] = {}

    def quota_of(self, namespace: str | None) -> Resources | None:
        """The namespace's quota (the "free" its timeline is checked against); None if unlimited."""
        return None if namespace is None else self.quotas.get(namespace)

    def ns_timeline(self, namespace: str) -> Timeline:
        return self._ns_timelines[namespace]

    # -- nodes and pods --------------------------------------------------------------------

    def set_node(self, name: str, allocatable: Resources, labels: Mapping[str, str] | None = None,
                 taints: Sequence[Taint] = (), ready: bool = True, unschedulable: bool = False) -> list[str]:
        """Add or change a node. Returns the bookings revoked because the node no longer holds them."""
        old = self.nodes.get(name)
        node = NodeState(name, allocatable, labels or {}, taints, ready, unschedulable)
        if old is not None and node.same_as(old):
            return []  # a status heartbeat: nothing the calendar reads changed
        if old is not None:
            self._unindex(old)
            node.timeline, node.bookings = old.timeline, old.bookings
        node.pods = self._pods_by_node.setdefault(name, set())
        self.nodes[name] = node
        self._recompute_base(node)
        return self._settle({name}, set(), f"node {name} changed")

    def remove_node(self, name: str) -> list[str]:
        """A node went away: its bookings are revoked; pods recorded on it are forgotten."""
        node = self.nodes.pop(name, None)
        if node is None:
            return []
        self._unindex(node)
        for pod_id in list(node.pods):
            self._forget_pod(pod_id)
        self._pods_by_node.pop(name, None)
        revoked = sorted(node.bookings, key=lambda b: -self.bookings[b].seq)
        grown: set[str] = set()
        for booking_id in revoked:
            grown |= self._revoke(booking_id, f"node {name} was removed")
        return revoked + self._settle(grown, set(), f"node {name} was removed")

    def set_pod(self, pod_id: str, node: str, requests: Resources, booking_id: str | None = None,
                since: int | None = None) -> list[str]:
        """A pod bound to `node` holds `requests` (see resources.pod_requests). `booking_id` marks
        the booking it was created for; `since` (the pod's creation) before that booking's start
        means the booking's capacity is taken from then on. Returns the bookings revoked to make
        room for it."""
        pod = PodState(node, requests, booking_id)
        early = self._held_early(pod, since)
        if self.pods.get(pod_id) == pod and node in self.nodes and early is None:
            return []  # a status update of a pod already counted
        touched = self._forget_pod(pod_id)
        self.pods[pod_id] = pod
        self._pods_by_node.setdefault(node, set()).add(pod_id)
        if booking_id is not None:
            self._pods_by_booking.setdefault(booking_id, set()).add(pod_id)
        touched.add(node)
        namespaces: set[str] = set()
        if early is not None:
            self._remove(early.id)
            self._apply(early)
            touched |= set(early.per_node)
            namespaces.add(early.namespace)
        for name in touched:
            if name in self.nodes:
                self._recompute_base(self.nodes[name])
        return self._settle(touched & self.nodes.keys(), namespaces, f"pod {pod_id} landed on {node}")

    def _held_early(self, pod: PodState, since: int | None) -> Booking | None:
        """The pod's booking, held from `since` (or from when its capacity is free, if later:
        a pod made before then takes nobody's booking), if that is earlier than it is held now."""
        booking = self.bookings.get(pod.booking_id) if pod.booking_id is not None else None
        if since is None or booking is None or not self._covered(pod) or since >= booking.span_start:
            return None
        held = self.hold_from(booking.id, booking.start - int(since))
        return replace(booking, held_from=held) if held < booking.span_start else None

    def hold_from(self, booking_id: str, lead: int) -> int:
        """When the booking's pods may be made to hold its capacity ahead of its start: `lead`
        seconds before it, or later if until then its nodes are taken by other bookings (a
        booking back to back with another) or pods: the earliest instant from which it fits on
        each of its nodes up to its start. Its start if it is not known."""
        booking = self.bookings.get(booking_id)
        if booking is None:
            raise KeyError(booking_id)
        until = booking.span_start  # (from there on it is counted already)
        held = min(booking.start - max(0, lead), until)
        for name, need in booking.per_node.items():
            node = self.nodes.get(name)
            if node is None:
                return booking.start
            tl, times = node.timeline, node.timeline.times
            while held < until and not tl.fits(need, node.free, held, until):
                i = bisect_right(times, held)  # on from the next change of the node's usage
                held = min(times[i], until) if i < len(times) else until
        return held

    def remove_pod(self, pod_id: str) -> list[str]:
        for name in self._forget_pod(pod_id):
            if name in self.nodes:
                self._recompute_base(self.nodes[name])
        return []  # less usage never breaks the invariant

    def _forget_pod(self, pod_id: str) -> set[str]:
        pod = self.pods.pop(pod_id, None)
        if pod is None:
            return set()
        self._pods_by_node.get(pod.node, set()).discard(pod_id)
        if pod.booking_id is not None:
            ids = self._pods_by_booking.get(pod.booking_id)
            if ids is not None:
                ids.discard(pod_id)
                if not ids:
                    del self._pods_by_booking[pod.booking_id]
        return {pod.node}

    def _covered(self, pod: PodState) -> bool:
        booking = self.bookings.get(pod.booking_id) if pod.booking_id is not None else None
        return booking is not None and any(n == pod.node for n, _ in booking.placements)

    def _recompute_base(self, node: NodeState) -> None:
        """The one place base usage is decided."""
        base = total(self.pods[p].requests for p in node.pods if not self._covered(self.pods[p]))
        self._unindex(node)  # drops the arrays too
        node.base = base
        node.free = node.allocatable - base
        if node.schedulable:
            self.by_cpu.add(node)
            if node.allocatable.gpu > 0:
                self.gpu_by_cpu.add(node)

    def _changed(self) -> None:
        """The one place saying that something an answer reads has changed: what was derived
        from the old state is dropped."""
        self.derived.clear()

    def _unindex(self, node: NodeState) -> None:
        self._changed()
        self.node_derived.clear()
        self.by_cpu.discard(node)
        self.gpu_by_cpu.discard(node)

    # -- bookings --------------------------------------------------------------------------

    def book(self, booking_id: str, namespace: str, placements: Iterable[tuple[str, Resources]],
             start: int, end: int, expires: int | None = None) -> None:
        """Record a booking (a hold while `expires` is set). Atomic: raises Conflict and changes
        nothing if it would break the invariant. Re-booking an id with the same content is a no-op."""
        placements = tuple((str(n), Resources(*v)) for n, v in placements)
        booking = Booking(booking_id, namespace, int(start), int(end), placements, expires)
        existing = self.bookings.get(booking_id)
        if existing is not None:
            if existing.same_request(booking):
                return
            raise Conflict([Reason("conflict", f"booking {booking_id} exists with different content")])
        self._check_booking(booking)
        self._seq += 1
        self._apply(Booking(booking_id, namespace, booking.start, booking.end, placements, expires, self._seq))

    def _check_booking(self, booking: Booking) -> None:
        if not booking.placements:
            raise Conflict([Reason("conflict", f"booking {booking.id} places nothing")])
        if booking.end <= booking.start:
            raise Conflict([Reason("conflict", f"booking {booking.id} ends before it starts")])
        reasons: list[Reason] = []
        own_pods = self._pods_by_booking.get(booking.id, set())
        for name, vector in booking.per_node.items():
            if not vector.is_nonnegative():
                raise Conflict([Reason("conflict", f"booking {booking.id}: negative request on {name}")])
            node = self.nodes.get(name)
            if node is None:
                reasons.append(Reason("conflict", f"node {name} does not exist", node=name))
                continue
            # Pods already created for this booking (a replay) stop counting as base once it exists.
            own = total(self.pods[p].requests for p in own_pods if self.pods[p].node == name)
            free = node.free + own - Resources(*node.timeline.max_over(booking.start, booking.end))
            for r, res in enumerate(NAMES):
                if vector[r] > free[r]:
                    reasons.append(Reason(
                        "capacity",
                        f"{res}: needs {amount(res, vector[r])} on {name}, which has "
                        f"{amount(res, max(0, free[r]))} free over {span(booking.start, booking.end)}",
                        resource=res, needed=vector[r], available=max(0, free[r]), node=name, at=booking.start))
        reasons += self.quota_reasons(booking.namespace, booking.total, booking.start, booking.end)
        if reasons:
            raise Conflict(reasons)

    def quota_reasons(self, namespace: str, need: Resources, start: int, end: int) -> list[Reason]:
        """Why adding `need` over [start, end) would exceed the namespace's quota ([] if it fits)."""
        quota = self.quota_of(namespace)
        if quota is None:
            return []
        tl = self._ns_timelines[namespace]
        used = tl.max_over(start, end)
        out = []
        for r in range(3):
            if used[r] + need[r] > quota[r]:
                at = self._first_above(tl, r, quota[r] - need[r], start, end)
                out.append(quota_reason(namespace, NAMES[r], used[r], quota[r], need[r], at))
        return out

    @staticmethod
    def _first_above(tl: Timeline, r: int, limit: int, start: int, end: int) -> int:
        col, times = tl.cols[r], tl.times
        for k in range(len(times)):
            nxt = times[k + 1] if k + 1 < len(times) else end
            if nxt > start and times[k] < end and col[k] > limit:
                return max(start, times[k])
        return start

    def _apply(self, booking: Booking) -> None:
        self._changed()
        self.bookings[booking.id] = booking
        self._ends.add((booking.end, booking.id))
        if booking.expires is not None:
            self._holds.add((booking.expires, booking.id))
        self._ns_bookings.setdefault(booking.namespace, set()).add(booking.id)
        for name, vector in booking.per_node.items():
            node = self.nodes[name]
            node.timeline.add(booking.span_start, booking.end, vector)
            node.bookings.add(booking.id)
        if booking.namespace in self._ns_timelines:
            self._ns_timelines[booking.namespace].add(booking.span_start, booking.end, booking.total)
        for pod_id in self._pods_by_booking.get(booking.id, ()):
            node = self.nodes.get(self.pods[pod_id].node)
            if node is not None:
                self._recompute_base(node)

    def _remove(self, booking_id: str) -> set[str]:
        """Take a booking out; returns the nodes whose base may have grown (its pods now count)."""
        booking = self.bookings.pop(booking_id)
        self._changed()
        self._ends.discard((booking.end, booking.id))
        if booking.expires is not None:
            self._holds.discard((booking.expires, booking.id))
        self._ns_bookings[booking.namespace].discard(booking.id)
        for name, vector in booking.per_node.items():
            node = self.nodes.get(name)
            if node is not None:
                node.timeline.add(booking.span_start, booking.end, vector, -1)
                node.bookings.discard(booking.id)
        if booking.namespace in self._ns_timelines:
            self._ns_timelines[booking.namespace].add(booking.span_start, booking.end, booking.total, -1)
        grown = set()
        for pod_id in self._pods_by_booking.get(booking.id, ()):
            name = self.pods[pod_id].node
            if name in self.nodes:
                self._recompute_base(self.nodes[name])
                grown.add(name)
        return grown

    def confirm(self, booking_id: str) -> None:
        """A hold becomes a booking (no longer expires). Confirming a booking is a no-op."""
        booking = self.bookings.get(booking_id)
        if booking is None:
            raise KeyError(booking_id)
        if booking.expires is not None:
            self._changed()
            self._holds.discard((booking.expires, booking.id))
            self.bookings[booking_id] = replace(booking, expires=None)

    def release(self, booking_id: str) -> list[str]:
        """Remove a booking (unknown ids are ignored, so replays are harmless). Returns bookings
        revoked because the released booking's pods are still running and now count as base."""
        if booking_id not in self.bookings:
            return []
        return self._settle(self._remove(booking_id), set(), f"booking {booking_id} was released")

    def expire(self, now: int) -> list[str]:
        """Drop holds whose expiry is <= now; returns their ids."""
        expired = []
        grown: set[str] = set()
        while self._holds and self._holds[0][0] <= now:
            _, booking_id = self._holds[0]
            expired.append(booking_id)
            grown |= self._remove(booking_id)
        self._settle(grown, set(), "a hold expired")
        return expired

    def advance(self, now: int) -> list[str]:
        """Forget bookings that ended (end <= now). Returns bookings revoked as a consequence
        (pods that outlive their booking count as base)."""
        grown: set[str] = set()
        while self._ends and self._ends[0][0] <= now:
            grown |= self._remove(self._ends[0][1])
        return self._settle(grown, set(), "a booking ended and its pods still run")

    # -- quota -----------------------------------------------------------------------------

    def set_quota(self, namespace: str, quota: Resources | None) -> list[str]:
        """Set (None: remove) the namespace's quota (see quota.quota_vector / quota_from_resourcequota).
        Returns bookings revoked, newest first, because they no longer fit a lowered quota."""
        self._changed()
        if quota is None:
            self.quotas.pop(namespace, None)
            self._ns_timelines.pop(namespace, None)
            return []
        self.quotas[namespace] = Resources(quota[0], quota[1], quota[2], UNLIMITED, UNLIMITED)
        tl = Timeline()
        for booking_id in self._ns_bookings.get(namespace, ()):
            b = self.bookings[booking_id]
            tl.add(b.span_start, b.end, b.total)
        self._ns_timelines[namespace] = tl
        return self._settle(set(), {namespace}, f"quota of {namespace} changed")

    # -- keeping the invariant -------------------------------------------------------------

    def _revoke(self, booking_id: str, why: str) -> set[str]:
        grown = self._remove(booking_id)
        self._log.append(Revocation(booking_id, why))
        return grown

    def _settle(self, nodes: set[str], namespaces: set[str], why: str) -> list[str]:
        """Revoke bookings, newest first among those overlapping a violation, until the invariant holds."""
        revoked: list[str] = []
        work_nodes, work_ns = set(nodes), set(namespaces)
        while work_nodes or work_ns:
            if work_nodes:
                name = work_nodes.pop()
                node = self.nodes.get(name)
                culprit = self._node_culprit(node) if node is not None else None
                if culprit is None:
                    continue
                work_nodes.add(name)
            else:
                ns = work_ns.pop()
                culprit = self._ns_culprit(ns)
                if culprit is None:
                    continue
                work_ns.add(ns)
            work_nodes |= self._revoke(culprit, why)
            revoked.append(culprit)
        return revoked

    def _newest_overlapping(self, ids: Iterable[str], tl: Timeline, over: Sequence[int]) -> str | None:
        """The newest booking overlapping a segment where usage exceeds `over` (per resource)."""
        times, cols = tl.times, tl.cols
        bad = [(times[k], times[k + 1] if k + 1 < len(times) else times[k] + 1)
               for k in range(len(times)) if any(cols[r][k] > over[r] for r in range(5))]
        if not bad:
            return None
        best: Booking | None = None
        for booking_id in ids:
            b = self.bookings[booking_id]
            if (best is None or b.seq > best.seq) and any(b.span_start < e and s < b.end for s, e in bad):
                best = b
        return best.id if best else None

    def _node_culprit(self, node: NodeState) -> str | None:
        if all(node.timeline.peak[r] <= node.free[r] for r in range(5)):
            return None
        return self._newest_overlapping(node.bookings, node.timeline, node.free)

    def _ns_culprit(self, namespace: str) -> str | None:
        if namespace not in self.quotas:
            return None
        tl = self._ns_timelines[namespace]
        q = self.quotas[namespace]
        if all(tl.peak[r] <= q[r] for r in range(3)):
            return None
        return self._newest_overlapping(self._ns_bookings.get(namespace, ()), tl, q)

    def drain_revocations(self) -> list[Revocation]:
        """Every revocation since the last drain, in order (complete, including those caused by expire)."""
        out, self._log = self._log, []
        return out

    def check_invariant(self) -> list[str]:
        """Verify the invariant from scratch (ignores incremental state); returns the violations."""
        problems = []
        for name, node in self.nodes.items():
            base = total(self.pods[p].requests for p in self._pods_by_node.get(name, ())
                         if not self._covered(self.pods[p]))
            mine = [(b.span_start, b.end, b.per_node[name]) for b in self.bookings.values() if name in b.per_node]
            for t in {s for s, _, _ in mine}:
                used = base + total(v for s, e, v in mine if s <= t < e)
                if not used.fits(node.allocatable):
                    problems.append(f"node {name} at {t}: {used} > {node.allocatable}")
        for b in self.bookings.values():
            for name in b.per_node:
                if name not in self.nodes:
                    problems.append(f"booking {b.id} is on unknown node {name}")
        for ns, q in self.quotas.items():
            mine = [self.bookings[i] for i in self._ns_bookings.get(ns, ())]
            for t in {b.span_start for b in mine}:
                used = total(b.total for b in mine if b.span_start <= t < b.end)
                if any(used[r] > q[r] for r in range(3)):
                    problems.append(f"namespace {ns} at {t}: {used} over quota {q}")
        return problems
