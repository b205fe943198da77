from execplanner.engine import Calendar, PodRequest, Range, Request, Resources, quota_vector

from .helpers import GI, H, cluster, vec


def req(cores, cores_max=None, hours=1, hours_max=None, **kw):
    return Request(cpu=Range.of(cores * 1000, None if cores_max is None else cores_max * 1000),
                   memory=Range.of(GI), duration=Range.of(hours * H, None if hours_max is None else hours_max * H), **kw)


def test_now_when_free():
    cal = cluster(16)
    result = cal.offers(req(8), now=100)
    assert result.offers[0].start == 100 and result.offers[0].end == 100 + H
    assert result.offers[0].assignments[0].node == "n0"


def test_earliest_start_is_when_a_booking_ends():
    cal = cluster(16)
    cal.book("b", "ns", [("n0", vec(12))], 0, 5 * H + 17)
    first = cal.offers(req(8), now=0).offers[0]
    assert first.start == 5 * H + 17  # exactly at the end, not on a grid
    # a 4-core request fits beside the booking right away
    assert cal.offers(req(4), now=0).offers[0].start == 0


def test_sized_up_to_max_and_duration_extended():
    cal = cluster(16)
    cal.book("b", "ns", [("n0", vec(6))], 3 * H, 4 * H)
    offers = cal.offers(req(4, 12, hours=1, hours_max=10), now=0).offers
    # Sized over the minimum duration (12 cores fit for the first hour), then run while 12 still fit.
    assert (offers[0].start, offers[0].cpu, offers[0].vector.cpu, offers[0].end) == (0, 12_000, 12_000, 3 * H)
    # The alternative: the maximum duration, with the most cores that fit for all of it.
    assert (0, 10_000, 10 * H) in [(o.start, o.cpu, o.end) for o in offers]
    offer = cal.offers(req(4, 16, hours=2, hours_max=10), now=0).offers[0]
    assert (offer.cpu, offer.end) == (16_000, 3 * H)


def test_alternatives_trade_start_for_size_and_are_not_dominated():
    cal = cluster(16)
    cal.book("b", "ns", [("n0", vec(12))], 0, 2 * H)
    cal.book("c", "ns", [("n0", vec(8))], 6 * H, 7 * H)
    offers = cal.offers(req(4, 16, hours=1, hours_max=8), now=0, count=3).offers
    assert [(o.start, o.cpu, o.duration) for o in offers] == [
        (0, 4000, 8 * H),  # now, small: 4 cores fit beside both bookings
        (2 * H, 16_000, 4 * H),  # all 16 cores once b ends, until c starts
        (7 * H, 16_000, 8 * H),  # all 16 cores for the full 8 hours after c
    ]
    for earlier, later in zip(offers, offers[1:]):
        assert later.start >= earlier.start and not earlier.dominates(later)


def test_one_offer_per_named_window_even_when_the_first_is_better():
    cal = cluster(16)
    cal.book("b", "ns", [("n0", vec(10))], 5 * H, 6 * H)
    windows = ((0, 60), (4 * H, 5 * H + 30), (10 * H, 10 * H + 60))
    offers = cal.offers(req(8, hours=1, windows=windows), now=0, count=3).offers
    # The same size in three slots: later ones are dominated by the first, yet each window the
    # client named gets its own earliest start (the middle one only once b has ended).
    assert [(o.start, o.cpu) for o in offers] == [(0, 8000), (4 * H, 8000), (10 * H, 8000)]
    assert cal.offers(req(8, hours=1, windows=windows), now=0, count=2).offers[1].start == 4 * H
    assert len(cal.offers(req(8, hours=1, windows=windows), now=0, count=1).offers) == 1


def test_alternatives_in_time_when_the_first_is_already_the_largest():
    cal = cluster(16)
    # Fixed size (16 cores, 1 h): every later start is "dominated" by the first, yet a client
    # asking for three offers gets three slots, each once the ones before it have ended (so
    # that all three can be held at once).
    offers = cal.offers(req(16, hours=1), now=0, count=3).offers
    assert [(o.start, o.cpu, o.duration) for o in offers] == [(0, 16_000, H), (H, 16_000, H), (2 * H, 16_000, H)]
    # Now, after the booking that holds the node ends, and after that.
    cal.book("b", "ns", [("n0", vec(12))], 0, 2 * H + 30)
    offers = cal.offers(req(8, hours=1), now=0, count=3).offers
    assert [o.start for o in offers] == [2 * H + 30, 3 * H + 30, 4 * H + 30]
    # The largest size for the longest time at once: the trade-offs are dominated by the first,
    # the slots in time are not.
    offers = cal.offers(req(2, 4, hours=1, hours_max=2), now=0, count=3).offers
    assert [(o.start, o.cpu, o.duration) for o in offers] == [(0, 4000, 2 * H), (2 * H, 4000, 2 * H),
                                                               (4 * H, 4000, 2 * H)]
    # A single window bounds the starts; one offer each when the client names several windows.
    offers = cal.offers(req(4, hours=1, windows=((0, 90 * 60),)), now=0, count=3).offers
    assert [o.start for o in offers] == [0, H]
    assert len(cal.offers(req(4, hours=1), now=0, count=1).offers) == 1


def test_pod_sets_get_alternatives_in_time_and_one_offer_per_window():
    cal = cluster(8, 8)
    pods = tuple(PodRequest(f"p{i}", vec(6)) for i in range(2))
    offers = cal.offers(Request(duration=Range(H, H), pods=pods), now=0, count=3).offers
    assert [o.start for o in offers] == [0, H, 2 * H] and all(o.cpu == 12_000 for o in offers)
    for i, o in enumerate(offers):  # never overlapping: all of them can be held at once
        cal.book(f"hold{i}", "ns", o.placements, o.start, o.end, expires=10)
    assert cal.check_invariant() == []
    windows = ((10 * H, 10 * H + 60), (20 * H, 20 * H + 60))
    offers = cal.offers(Request(duration=Range(H, H), pods=pods, windows=windows), now=0, count=3).offers
    assert [o.start for o in offers] == [10 * H, 20 * H]


def test_minimal_returns_exactly_the_minimum():
    cal = cluster(16)
    offers = cal.offers(req(4, 16, hours=1, hours_max=8, minimal=True), now=0).offers
    assert len(offers) == 1 and offers[0].cpu == 4000 and offers[0].duration == H


def test_windows_bound_the_start_not_the_run():
    cal = cluster(16)
    cal.book("b", "ns", [("n0", vec(16))], 0, 10 * H)
    r = req(8, hours=3, windows=((H, 5 * H), (9 * H, 12 * H)))
    first = cal.offers(r, now=0).offers[0]
    assert first.start == 10 * H and first.end == 13 * H  # starts in the second window, runs beyond it
    none = cal.offers(req(8, windows=((H, 5 * H),)), now=0)
    assert not none.offers
    assert none.reasons[0].resource == "cpu" and "needs 8 cores" in none.reasons[0].message
    past = cal.offers(req(8, windows=((0, 10),)), now=100)
    assert not past.offers and "past" in past.reasons[0].message


def test_horizon_limits_default_window():
    cal = Calendar(horizon=24 * H)
    cal.set_node("n0", Resources(16_000, 64 * GI, 0, 0, 110))
    cal.book("b", "ns", [("n0", vec(16))], 0, 30 * H)
    assert not cal.offers(req(8), now=0).offers
    assert cal.offers(req(8), now=10 * H).offers[0].start == 30 * H


def test_gpu_and_memory_ranges():
    cal = Calendar()
    cal.set_node("g", Resources(32_000, 128 * GI, 4, 0, 110))
    cal.book("b", "ns", [("g", Resources(0, 0, 3, 0, 1))], 0, H)
    r = Request(cpu=Range(1000, 1000), memory=Range(8 * GI, 64 * GI), gpu=Range(1, 4), duration=Range(H, H))
    offers = cal.offers(r, now=0).offers
    assert (offers[0].start, offers[0].gpu, offers[0].memory) == (0, 1, 64 * GI)
    assert any(o.start == H and o.gpu == 4 for o in offers)


def test_quota_limits_offers():
    cal = cluster(64)
    cal.set_quota("team", quota_vector(cpu=16_000))
    cal.book("b", "team", [("n0", vec(12))], 0, 2 * H)
    first = cal.offers(req(8, 32), now=0, namespace="team").offers[0]
    assert first.start == 2 * H and first.cpu == 16_000  # quota frees at 2h; sized to the quota
    small = cal.offers(req(2, 32), now=0, namespace="team").offers[0]
    assert small.start == 0 and small.cpu == 4000
    never = cal.offers(req(20), now=0, namespace="team")
    assert not never.offers and never.reasons[0].kind == "quota" and "team" in never.reasons[0].message
    blocked = cal.offers(req(8, windows=((0, H),)), now=0, namespace="team")
    assert not blocked.offers and blocked.reasons[0].kind == "quota"
    assert "namespace team has 12 cores booked" in blocked.reasons[0].message


def test_pod_set_offers():
    cal = cluster(8, 8)
    cal.book("b", "ns", [("n0", vec(6))], 0, 3 * H)
    pods = tuple(PodRequest(f"p{i}", vec(c)) for i, c in enumerate((6, 6, 2)))
    r = Request(duration=Range(H, 4 * H), pods=pods)
    offers = cal.offers(r, now=0).offers
    assert offers[0].start == 3 * H and offers[0].duration == 4 * H and offers[0].cpu == 14_000
    assert len(offers[0].assignments) == 3
    cal.book("set", "ns", offers[0].placements, offers[0].start, offers[0].end)
    assert cal.check_invariant() == []
    big = Request(duration=Range(H, H), pods=(PodRequest("huge", vec(9)),))
    failed = cal.offers(big, now=0)
    assert not failed.offers and "pod huge: cpu: needs 9 cores" in failed.reasons[0].message


def test_offers_are_bookable_and_deterministic():
    cal = cluster(8, 16, 32)
    cal.book("b1", "ns", [("n2", vec(30))], 0, 4 * H)
    cal.book("b2", "ns", [("n1", vec(10))], H, 5 * H)
    r = req(8, 32, hours=1, hours_max=6)
    a = cal.offers(r, now=0)
    assert a == cal.offers(r, now=0)
    for i, o in enumerate(a.offers):
        cal.book(f"o{i}", "ns", o.placements, o.start, o.end)
        cal.release(f"o{i}")


def test_cpu_only_work_keeps_off_gpu_nodes_when_an_equal_cpu_node_is_free():
    from execplanner.engine import Calendar, Range, Request, Resources

    cal = Calendar()
    # The GPU node sorts first by name; an identical CPU node must still be preferred.
    cal.set_node("a-gpu", Resources(16000, 64 << 30, 4, 0, 110))
    cal.set_node("b-cpu", Resources(16000, 64 << 30, 0, 0, 110))
    res = cal.offers(Request(cpu=Range.of(2000, 8000), memory=Range.of(1 << 30), duration=Range.of(600, 3600)), now=0)
    assert res.offers and {a.node for a in res.offers[0].assignments} == {"b-cpu"}
    gpu = cal.offers(Request(cpu=Range.of(2000), memory=Range.of(1 << 30), gpu=Range.of(1), duration=Range.of(600)), now=0)
    assert {a.node for a in gpu.offers[0].assignments} == {"a-gpu"}
