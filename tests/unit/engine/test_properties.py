"""Property tests: the engine against a brute-force oracle on small random clusters.

The oracle knows only the facts (nodes, pods, accepted bookings, quota) and checks every
integer instant; all times here are integers, so that is exhaustive."""
import os
from itertools import product

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execplanner.engine import (Calendar, Conflict, PodRequest, Range, Request, Resources, Taint,
                                        Toleration, quota_vector)
from execplanner.engine import vector
from execplanner.engine.filters import HARD_EFFECTS, PodFilter
from execplanner.engine.offers import clip, longest, offers, size_at

from . import reference

T = 60  # time domain
HORIZON = 60
# ENGINE_EXAMPLES=5000 for a deeper search; the default keeps the suite fast.
EXAMPLES = int(os.environ.get("ENGINE_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
TAINT = Taint("dedicated", "x", "NoSchedule")


# -- the oracle ---------------------------------------------------------------------------------

def passes(node, selector, tolerations):
    if not node["ready"]:
        return False
    if any(node["labels"].get(k) != v for k, v in selector.items()):
        return False
    return all(any(t.tolerates(taint) for t in tolerations) for taint in node["taints"] if taint.effect in HARD_EFFECTS)


def covered(pod, bookings):
    b = bookings.get(pod[2]) if pod[2] else None
    return b is not None and any(n == pod[0] for n, _ in b.placements)


def used(name, t, pods, bookings):
    """Base + booked on node `name` at instant t, and whether anything is booked there."""
    u = [0] * 5
    for pod in pods.values():
        if pod[0] == name and not covered(pod, bookings):
            u = [a + b for a, b in zip(u, pod[1])]
    active = False
    for b in bookings.values():
        if b.start <= t < b.end:
            for n, v in b.placements:
                if n == name:
                    active = True
                    u = [a + b for a, b in zip(u, v)]
    return u, active


def ns_used(t, bookings, ns):
    u = [0] * 5
    for b in bookings.values():
        if b.namespace == ns and b.start <= t < b.end:
            for _, v in b.placements:
                u = [a + c for a, c in zip(u, v)]
    return u


def fits_at(nodes, pods, bookings, per_node, start, end, quota=None, ns=None):
    """Adding `per_node` ({node: vector}) over [start, end) keeps every node and the quota within limits."""
    for t in range(start, end):
        for name, extra in per_node.items():
            u, _ = used(name, t, pods, bookings)
            if any(a + b > c for a, b, c in zip(u, extra, nodes[name]["alloc"])):
                return False
        if quota is not None:
            total = [sum(v[r] for v in per_node.values()) for r in range(5)]
            q = ns_used(t, bookings, ns)
            if any(q[r] + total[r] > quota[r] for r in range(3)):
                return False
    return True


def invariant_violations(nodes, pods, bookings, quota=None, ns=None):
    out = []
    for name, node in nodes.items():
        for t in range(0, T + 30):
            u, active = used(name, t, pods, bookings)
            if active and any(a > c for a, c in zip(u, node["alloc"])):
                out.append((name, t))
    if quota is not None:
        for t in range(0, T + 30):
            q = ns_used(t, bookings, ns)
            if any(q[r] > quota[r] for r in range(3)):
                out.append((ns, t))
    for b in bookings.values():
        out += [(n, "gone") for n, _ in b.placements if n not in nodes]
    return out


# -- strategies ----------------------------------------------------------------------------------

@st.composite
def clusters(draw):
    nodes = {}
    for i in range(draw(st.integers(1, 4))):
        nodes[f"n{i}"] = {
            "alloc": Resources(draw(st.integers(0, 8)), draw(st.integers(0, 8)), draw(st.integers(0, 2)), 0,
                               draw(st.integers(1, 4))),
            "labels": {"zone": draw(st.sampled_from("ab"))},
            "taints": [TAINT] if draw(st.integers(0, 4)) == 0 else [],
            "ready": draw(st.integers(0, 5)) > 0,
        }
    return nodes


def small_vec(draw, hi=4):
    return Resources(draw(st.integers(0, hi)), draw(st.integers(0, hi)), draw(st.integers(0, 1)), 0, 1)


def build(draw, quota_on):
    nodes = draw(clusters())
    cal = Calendar(horizon=HORIZON)
    for name, n in nodes.items():
        cal.set_node(name, n["alloc"], n["labels"], n["taints"], ready=n["ready"])
    quota = None
    if quota_on and draw(st.booleans()):
        quota = quota_vector(cpu=draw(st.integers(0, 10)), memory=draw(st.integers(0, 10)))
        cal.set_quota("ns", quota)
    pods = {}
    for i in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(nodes)))
        pods[f"pod{i}"] = (name, small_vec(draw, 2), None)
        cal.set_pod(f"pod{i}", name, pods[f"pod{i}"][1])
    for i in range(draw(st.integers(0, 8))):
        start = draw(st.integers(0, T - 1))
        end = draw(st.integers(start + 1, min(T + 20, start + 30)))
        placements = [(draw(st.sampled_from(sorted(nodes))), small_vec(draw)) for _ in range(draw(st.integers(1, 2)))]
        try:
            cal.book(f"b{i}", "ns", placements, start, end)
        except Conflict:
            pass
    return cal, nodes, pods, quota


def filters(draw):
    selector = {"zone": draw(st.sampled_from("ab"))} if draw(st.booleans()) else {}
    tolerations = (Toleration("dedicated", "Exists"),) if draw(st.booleans()) else ()
    return selector, tolerations


# -- properties ----------------------------------------------------------------------------------

@SETTINGS
@given(st.data())
def test_offers_are_feasible_earliest_and_maximal(data):
    draw = data.draw
    cal, nodes, pods, quota = build(draw, quota_on=True)
    bookings = dict(cal.bookings)
    cmin, mmin, gmin = draw(st.integers(0, 6)), draw(st.integers(0, 6)), draw(st.integers(0, 1))
    cmax, mmax, gmax = cmin + draw(st.integers(0, 4)), mmin + draw(st.integers(0, 4)), gmin + draw(st.integers(0, 1))
    dmin = draw(st.integers(1, 10))
    dmax = dmin + draw(st.integers(0, 8))
    now = draw(st.integers(0, 20))
    windows = None
    if draw(st.booleans()):
        windows = tuple(sorted((lo, lo + draw(st.integers(0, 20)))
                               for lo in draw(st.lists(st.integers(0, T), min_size=1, max_size=2))))
    selector, tolerations = filters(draw)
    minimal = draw(st.integers(0, 4)) == 0
    ns = "ns" if quota is not None else None
    request = Request(Range(cmin, cmax), Range(mmin, mmax), Range(gmin, gmax), Range(dmin, dmax), windows,
                      selector, tolerations, minimal)
    result = cal.offers(request, now, count=3, namespace=ns)
    assert bool(result.offers) != bool(result.reasons)

    opened = [(max(lo, now), hi) for lo, hi in (windows or ((now, now + HORIZON),)) if max(lo, now) <= hi]
    low = Resources(cmin, mmin, gmin, 0, 1)
    eligible = [n for n in nodes if passes(nodes[n], selector, tolerations)]

    for offer in result.offers:
        assert any(lo <= offer.start <= hi for lo, hi in opened)
        assert dmin <= offer.duration <= dmax
        (a,) = offer.assignments
        assert a.node in eligible
        assert cmin <= a.requests.cpu <= cmax and mmin <= a.requests.memory <= mmax and gmin <= a.requests.gpu <= gmax
        assert fits_at(nodes, pods, bookings, {a.node: a.requests}, offer.start, offer.end, quota, ns)

    def feasible(size, t, d):
        return [n for n in eligible if fits_at(nodes, pods, bookings, {n: size}, t, t + d, quota, ns)]

    starts = sorted({t for lo, hi in opened for t in range(lo, hi + 1)})
    oracle = next((t for t in starts if feasible(low, t, dmin)), None)
    first = result.offers[0] if result.offers else None
    assert (first.start if first else None) == oracle
    if first is None:
        return
    if not minimal and len(result.offers) < 3 and len(clip(opened, now)) <= 1:
        # Alternatives in time: fewer offers than asked for only when nothing fits (the minimum,
        # for the minimum duration) once every offer has ended.
        after = max(o.end for o in result.offers)
        assert not [t for t in starts if t >= after and feasible(low, t, dmin)], (after, result.offers)
    if minimal:
        assert (first.cpu, first.memory, first.gpu, first.duration) == (cmin, mmin, gmin, dmin)
        return
    # Size: the lexicographically biggest (cpu, memory, gpu) any node holds at that start for dmin.
    best = max(
        (min(cmax, c), min(mmax, m), min(gmax, g))
        for c, m, g in product(range(cmin, cmax + 1), range(mmin, mmax + 1), range(gmin, gmax + 1))
        if feasible(Resources(c, m, g, 0, 1), oracle, dmin)
    )
    assert (first.cpu, first.memory, first.gpu) == best
    size = Resources(*best, 0, 1)
    longest = max(d for d in range(dmin, dmax + 1) if feasible(size, oracle, d))
    assert first.duration == longest


@SETTINGS
@given(st.data())
def test_fit_is_feasible_and_exact_on_small_sets(data):
    draw = data.draw
    cal, nodes, pods, quota = build(draw, quota_on=True)
    bookings = dict(cal.bookings)
    start = draw(st.integers(0, T - 1))
    end = draw(st.integers(start + 1, start + 15))
    requests = []
    for i in range(draw(st.integers(1, 3))):
        selector, tolerations = filters(draw)
        requests.append(PodRequest(f"p{i}", small_vec(draw), selector, tolerations))
    ns = "ns" if quota is not None else None
    result = cal.fit(requests, start, end, ns)

    def per_node(assign):
        out = {}
        for pod, n in assign:
            out[n] = Resources(*(a + b for a, b in zip(out.get(n, Resources()), pod.requests)))
        return out

    if result:
        assign = [(next(p for p in requests if p.name == a.pod), a.node) for a in result.assignments]
        assert sorted(p.name for p, _ in assign) == [p.name for p in requests]
        assert all(passes(nodes[n], p.node_selector, p.tolerations) for p, n in assign)
        assert fits_at(nodes, pods, bookings, per_node(assign), start, end, quota, ns)
    else:
        assert result.reasons and all(r.message for r in result.reasons)
        # Small instances are decided exactly: no assignment at all may work.
        for choice in product(sorted(nodes), repeat=len(requests)):
            assign = list(zip(requests, choice))
            if all(passes(nodes[n], p.node_selector, p.tolerations) for p, n in assign):
                assert not fits_at(nodes, pods, bookings, per_node(assign), start, end, quota, ns), choice


OPS = st.sampled_from(["book", "book", "book", "hold", "release", "confirm", "expire", "advance", "shrink",
                       "grow", "remove_node", "add_node", "foreign_pod", "booked_pod", "remove_pod", "quota"])


@SETTINGS
@given(st.data())
def test_random_updates_never_break_the_invariant(data):
    draw = data.draw
    nodes = draw(clusters())
    cal = Calendar(horizon=HORIZON)
    for name, n in nodes.items():
        cal.set_node(name, n["alloc"], n["labels"], n["taints"], ready=n["ready"])
    pods: dict = {}
    quota = None
    # Asked before every change and again after it: an answer reused (Calendar.offers) must be
    # what a fresh search gives, whatever the change was.
    question = Request(cpu=Range(1, 3), memory=Range(1, 2), duration=Range(2, 8), windows=((0, T),))
    for step in range(draw(st.integers(1, 25))):
        cal.offers(question, 0, 2, "ns")
        op = draw(OPS)
        before = set(cal.bookings)
        gone: set = set()  # bookings this op removes on purpose
        revoked: list = []
        names = sorted(nodes)
        if op in ("book", "hold") and names:
            start = draw(st.integers(0, T - 1))
            end = draw(st.integers(start + 1, start + 30))
            placements = [(draw(st.sampled_from(names)), small_vec(draw)) for _ in range(draw(st.integers(1, 2)))]
            expires = draw(st.integers(0, T)) if op == "hold" else None
            snapshot = dict(cal.bookings)
            try:
                cal.book(f"b{step}", "ns", placements, start, end, expires)
            except Conflict:
                assert cal.bookings == snapshot  # atomic
            else:
                # accepted: the oracle agrees it fitted
                b = cal.bookings[f"b{step}"]
                extra = {}
                for n, v in b.placements:
                    extra[n] = Resources(*(x + y for x, y in zip(extra.get(n, Resources()), v)))
                assert fits_at(nodes, pods, snapshot, extra, start, end, quota, "ns")
                cal.book(f"b{step}", "ns", placements, start, end, expires)  # idempotent replay
        elif op == "release" and before:
            victim = draw(st.sampled_from(sorted(before)))
            gone = {victim}
            revoked = cal.release(victim)
        elif op == "confirm" and before:
            cal.confirm(draw(st.sampled_from(sorted(before))))
        elif op == "expire":
            gone = set(cal.expire(draw(st.integers(0, T))))
            revoked = [r.booking_id for r in cal.drain_revocations()]
        elif op == "advance":
            now = draw(st.integers(0, T))
            gone = {i for i in before if cal.bookings[i].end <= now}
            revoked = cal.advance(now)
        elif op in ("shrink", "grow") and names:
            name = draw(st.sampled_from(names))
            node = nodes[name]
            delta = -1 if op == "shrink" else 1
            node["alloc"] = Resources(*(max(0, a + delta * draw(st.integers(0, 2))) for a in node["alloc"]))
            node["ready"] = draw(st.integers(0, 5)) > 0
            revoked = cal.set_node(name, node["alloc"], node["labels"], node["taints"], ready=node["ready"])
        elif op == "remove_node" and names:
            name = draw(st.sampled_from(names))
            del nodes[name]
            pods = {k: p for k, p in pods.items() if p[0] != name}
            revoked = cal.remove_node(name)
        elif op == "add_node":
            name = f"n{len(nodes) + step + 10}"
            nodes[name] = {"alloc": Resources(4, 4, 1, 0, 3), "labels": {"zone": "a"}, "taints": [], "ready": True}
            revoked = cal.set_node(name, nodes[name]["alloc"], {"zone": "a"})
        elif op in ("foreign_pod", "booked_pod") and names:
            name = draw(st.sampled_from(names))
            owner = draw(st.sampled_from(sorted(before))) if op == "booked_pod" and before else None
            pods[f"pod{step}"] = (name, small_vec(draw, 3), owner)
            revoked = cal.set_pod(f"pod{step}", name, pods[f"pod{step}"][1], owner)
        elif op == "remove_pod" and pods:
            pod_id = draw(st.sampled_from(sorted(pods)))
            del pods[pod_id]
            revoked = cal.remove_pod(pod_id)
        elif op == "quota":
            quota = quota_vector(cpu=draw(st.integers(0, 12))) if draw(st.booleans()) else None
            revoked = cal.set_quota("ns", quota)
        if op != "expire":
            assert [r.booking_id for r in cal.drain_revocations()] == revoked  # the log matches the return value
        after = set(cal.bookings)
        assert set(revoked) <= before
        if op not in ("book", "hold"):
            assert after == before - gone - set(revoked)
        assert invariant_violations(nodes, pods, cal.bookings, quota, "ns") == []
        assert cal.check_invariant() == []
        assert cal.offers(question, 0, 2, "ns") == offers(cal, question, 0, 2, "ns"), f"stale answer after {op}"


@SETTINGS
@given(st.data())
def test_array_searches_match_the_per_node_loops(data):
    """vector.py's numpy answers equal the plain loops' (reference.py), node chosen included,
    also with a small score sample, ranges of one or two nodes, filters, quotas, and after
    the calendar changed."""
    cal, nodes, _, quota = build(data.draw, quota_on=True)
    cal.score_sample = data.draw(st.integers(0, 3))
    first_span, vector.FIRST_SPAN = vector.FIRST_SPAN, data.draw(st.sampled_from([1, 2, 64]))
    try:
        _compare_array_searches(data, cal, nodes, quota)
    finally:
        vector.FIRST_SPAN = first_span


def _compare_array_searches(data, cal, nodes, quota):
    ns = "ns" if quota is not None else None
    for _ in range(3):
        selector, tolerations = filters(data.draw)
        flt = PodFilter.of(selector, tolerations)
        low = small_vec(data.draw, 3)
        high = low + small_vec(data.draw, 3)
        start = data.draw(st.integers(0, T))
        d_min = data.draw(st.integers(1, 20))
        d_max = d_min + data.draw(st.integers(0, 20))
        assert size_at(cal, low, high, flt, start, d_min, ns) == reference.size_at(
            cal, low, high, flt, start, d_min, ns)
        got = longest(cal, low, flt, start, d_min, d_max, ns)
        want = reference.longest(cal, low, flt, start, d_min, d_max, ns)
        assert (got and (got[0], got[1].name)) == (want and (want[0], want[1].name))
        # Change the calendar between questions: the arrays must follow it.
        name = data.draw(st.sampled_from(sorted(nodes)))
        try:
            cal.book(f"extra{_}", "ns", [(name, small_vec(data.draw))], start, start + d_min)
        except Conflict:
            cal.set_pod(f"extra{_}", name, small_vec(data.draw, 1))
