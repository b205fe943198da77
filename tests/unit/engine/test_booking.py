import pytest

from execplanner.engine import Conflict, PodRequest, Resources, quota_from_resourcequota, quota_vector
from execplanner.engine.quota import UNLIMITED

from .helpers import GI, H, cluster, vec


def snapshot(cal):
    return (dict(cal.bookings), {n: (node.base, list(node.timeline.times), [list(c) for c in node.timeline.cols])
                                 for n, node in cal.nodes.items()})


def test_book_is_atomic():
    cal = cluster(8, 8)
    cal.book("a", "ns", [("n1", vec(6))], 0, H)
    before = snapshot(cal)
    with pytest.raises(Conflict) as err:
        cal.book("b", "ns", [("n0", vec(4)), ("n1", vec(4))], 0, H)  # fine on n0, not on n1
    assert snapshot(cal) == before
    r = err.value.reasons[0]
    assert (r.node, r.resource, r.needed, r.available) == ("n1", "cpu", 4000, 2000)
    assert "cpu: needs 4 cores on n1, which has 2 cores free" in str(err.value)
    with pytest.raises(Conflict):
        cal.book("c", "ns", [("nope", vec(1))], 0, H)
    with pytest.raises(Conflict):
        cal.book("d", "ns", [("n0", vec(1))], H, H)
    assert snapshot(cal) == before


def test_several_pods_on_one_node_add_up():
    cal = cluster(8)
    with pytest.raises(Conflict):
        cal.book("x", "ns", [("n0", vec(5)), ("n0", vec(5))], 0, H)
    cal.book("x", "ns", [("n0", vec(4)), ("n0", vec(4))], 0, H)
    assert not cal.fit([PodRequest("p", vec(1))], 0, H)


def test_rebooking_same_id_is_idempotent_and_different_content_conflicts():
    cal = cluster(8)
    cal.book("a", "ns", [("n0", vec(6))], 0, H, expires=50)
    cal.book("a", "ns", [("n0", vec(6))], 0, H, expires=50)  # replay
    assert len(cal.bookings) == 1
    with pytest.raises(Conflict, match="different content"):
        cal.book("a", "ns", [("n0", vec(5))], 0, H)
    assert cal.check_invariant() == []


def test_holds_expire_unless_confirmed():
    cal = cluster(8)
    cal.book("hold", "ns", [("n0", vec(8))], 0, H, expires=100)
    cal.book("kept", "ns", [("n0", vec(8))], H, 2 * H, expires=100)
    cal.confirm("kept")
    assert not cal.fit([PodRequest("p", vec(1))], 0, H)  # a hold counts as booked
    assert cal.expire(99) == []
    assert cal.expire(100) == ["hold"]
    assert set(cal.bookings) == {"kept"}
    assert cal.fit([PodRequest("p", vec(1))], 0, H)
    with pytest.raises(KeyError):
        cal.confirm("hold")


def test_release_and_advance():
    cal = cluster(8)
    cal.book("a", "ns", [("n0", vec(8))], 0, H)
    cal.book("b", "ns", [("n0", vec(8))], H, 2 * H)
    assert cal.release("a") == [] and cal.release("a") == []
    assert cal.fit([PodRequest("p", vec(8))], 0, H)
    cal.advance(2 * H)
    assert cal.bookings == {}


def test_booked_pods_are_not_counted_twice():
    cal = cluster(8)
    cal.book("job", "ns", [("n0", vec(6))], 0, H)
    cal.set_pod("ns/job-0", "n0", vec(6), booking_id="job")
    assert cal.nodes["n0"].base == Resources()
    assert cal.fit([PodRequest("p", vec(2))], 0, H)
    # the same pod without its booking (ended, still running) holds capacity on its own
    assert cal.advance(H) == []
    assert cal.nodes["n0"].base == vec(6)
    assert not cal.fit([PodRequest("p", vec(4))], H, 2 * H)


def test_a_bookings_pods_made_before_its_start_hold_its_capacity_from_then_on():
    # A task's pods are made a lead before the start and wait there: from their creation the
    # node's capacity is theirs, though the booking starts later.
    cal = cluster(8)
    cal.book("later", "ns", [("n0", vec(6))], H, 2 * H)
    assert cal.hold_from("later", 30) == H - 30
    assert cal.set_pod("ns/later-0", "n0", vec(6), booking_id="later", since=H - 30) == []
    assert cal.bookings["later"].start == H and cal.bookings["later"].span_start == H - 30
    assert not cal.fit([PodRequest("p", vec(4))], H - 20, H - 10) and cal.check_invariant() == []
    assert cal.nodes["n0"].base == Resources()  # counted once, by its booking
    # A later event of the same pod changes nothing; an earlier creation is not made later.
    assert cal.set_pod("ns/later-0", "n0", vec(6), booking_id="later", since=H - 30) == []
    cal.set_pod("ns/later-0", "n0", vec(6), booking_id="later", since=H - 10)
    assert cal.bookings["later"].span_start == H - 30
    # A pod made after the start changes nothing either.
    cal.book("next", "ns", [("n0", vec(2))], 3 * H, 4 * H)
    cal.set_pod("ns/next-0", "n0", vec(2), booking_id="next", since=3 * H + 5)
    assert cal.bookings["next"].span_start == 3 * H


def test_a_booking_in_the_lead_of_another_is_kept_and_the_hold_waits_for_it():
    # Someone booked the last ten minutes before `later` starts: `later`'s pods may hold only
    # from its start (the operator makes them then), and pods made earlier anyway revoke nobody.
    cal = cluster(8)
    cal.book("later", "ns", [("n0", vec(6))], H, 2 * H)
    cal.book("before", "ns", [("n0", vec(4))], H - 600, H)
    assert cal.hold_from("later", 30) == H
    assert cal.set_pod("ns/later-0", "n0", vec(6), booking_id="later", since=H - 30) == []
    assert set(cal.bookings) == {"later", "before"} and cal.bookings["later"].span_start == H
    assert cal.check_invariant() == []


def test_replayed_booking_with_its_pods_already_running():
    cal = cluster(8)
    cal.set_pod("ns/job-0", "n0", vec(6), booking_id="job")  # operator restarted: pod seen first
    cal.book("job", "ns", [("n0", vec(6))], 0, H)
    assert cal.nodes["n0"].base == Resources() and cal.check_invariant() == []


def test_node_shrink_revokes_newest_overlapping_first():
    cal = cluster(16)
    cal.book("old", "ns", [("n0", vec(8))], 0, 2 * H)
    cal.book("mid", "ns", [("n0", vec(8))], 0, H)
    cal.book("new", "ns", [("n0", vec(8))], 5 * H, 6 * H)  # newest, but not where the violation is
    revoked = cal.set_node("n0", Resources(10_000, 64 * GI, 0, 0, 110))
    assert revoked == ["mid"]
    assert set(cal.bookings) == {"old", "new"} and cal.check_invariant() == []
    assert [r.booking_id for r in cal.drain_revocations()] == ["mid"] and cal.drain_revocations() == []


def test_foreign_pod_and_node_removal_revoke():
    cal = cluster(8, 8)
    cal.book("a", "ns", [("n0", vec(4))], 0, H)
    cal.book("b", "ns", [("n0", vec(4))], 0, H)
    cal.book("c", "ns", [("n1", vec(4)), ("n0", vec(0.5))], 2 * H, 3 * H)
    assert cal.set_pod("kube-system/intruder", "n0", vec(3)) == ["b"]
    assert cal.check_invariant() == []
    assert cal.remove_node("n1") == ["c"]
    assert set(cal.bookings) == {"a"} and cal.check_invariant() == []


def test_release_of_booking_whose_pods_still_run_can_revoke_others():
    cal = cluster(8)
    cal.book("a", "ns", [("n0", vec(6))], 0, H)
    cal.set_pod("ns/a-0", "n0", vec(6), booking_id="a")
    cal.book("b", "ns", [("n0", vec(4))], 2 * H, 3 * H)
    assert cal.release("a") == ["b"]  # a's pod keeps running with no known end
    assert cal.check_invariant() == []


def test_quota_refuses_and_lowering_revokes():
    cal = cluster(64)
    cal.set_quota("team", quota_vector(cpu=10_000, gpu=0))
    cal.book("a", "team", [("n0", vec(6))], 0, H)
    with pytest.raises(Conflict) as err:
        cal.book("b", "team", [("n0", vec(6))], 0, H)
    assert err.value.reasons[0].kind == "quota"
    cal.book("b", "team", [("n0", vec(6))], H, 2 * H)  # adjacent, not overlapping
    cal.book("c", "team", [("n0", vec(4))], 0, H)
    assert cal.set_quota("team", quota_vector(cpu=6_000)) == ["c"]
    assert cal.check_invariant() == []
    assert cal.set_quota("team", None) == []
    cal.book("d", "team", [("n0", vec(40))], 0, H)


def test_quota_from_resourcequota():
    q = quota_from_resourcequota({"spec": {"hard": {"requests.cpu": "16", "requests.memory": "64Gi",
                                                    "pods": "10", "limits.cpu": "99"}}})
    assert (q.cpu, q.memory, q.gpu) == (16_000, 64 * GI, UNLIMITED)
    assert quota_from_resourcequota({"spec": {"hard": {"requests.nvidia.com/gpu": "2"}}}).gpu == 2
    assert quota_from_resourcequota({}).cpu == UNLIMITED


def test_back_to_back_bookings_hold_ahead_only_once_the_earlier_ones_end():
    """Two 8-core bookings fill a 16-core node until 100, two more follow from 100: the later
    pair's pods may hold ahead (a 30 s lead) only from 100, where the node is free, and pods
    made earlier than that revoke nothing (the Kueue comparison's queued stream found it: the
    second wave's pods, made 30 s early, revoked the first wave's and their own bookings)."""
    cal = cluster(16)
    for i in range(2):
        cal.book(f"first-{i}", "ns", [("n0", vec(8))], 0, 100)
        cal.book(f"second-{i}", "ns", [("n0", vec(8))], 100, 200)
    assert cal.hold_from("second-0", 30) == 100  # not 70: the first pair holds the node until 100
    cal.release("first-0")  # its task ended early: half the node is free from now on
    assert cal.hold_from("second-0", 30) == 70
    # A pod of the second pair made at 60 holds the half left free from then on...
    revoked = cal.set_pod("p-second-1", "n0", vec(8), booking_id="second-1", since=60)
    assert revoked == [] and not cal.check_invariant()
    assert set(cal.bookings) == {"first-1", "second-0", "second-1"}
    assert cal.bookings["second-1"].span_start == 60
    # ...so the other may hold only from the start; made earlier anyway, it revokes nobody.
    assert cal.hold_from("second-0", 30) == 100
    assert cal.set_pod("p-second-0", "n0", vec(8), booking_id="second-0", since=75) == []
    assert cal.bookings["second-0"].span_start == 100 and not cal.check_invariant()
