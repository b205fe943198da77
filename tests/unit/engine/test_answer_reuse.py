"""Calendar.offers reuses an answer only for the same question, in the same second, with
nothing changed since (test_properties checks the last part after every kind of change)."""
import dataclasses

import pytest

from execplanner.engine import Calendar, PodRequest, Range, Request, Resources, Toleration
from execplanner.engine.offers import question_key

NODE = Resources(8000, 32 * 2**30, 0, 0, 110)


def calendar() -> Calendar:
    cal = Calendar()
    for i in range(3):
        cal.set_node(f"n{i}", NODE, {"zone": "a"})
    return cal


BASE = Request(cpu=Range(1000, 2000), memory=Range(2**30, 2**31), duration=Range(3600, 7200))
# One different value per field of Request: a field without one fails the test below.
CHANGED = {
    "cpu": Range(1000, 3000), "memory": Range(2**30, 2**32), "gpu": Range(1, 1), "duration": Range(60, 60),
    "windows": ((100, 200),), "node_selector": {"zone": "a"}, "tolerations": (Toleration("x", "Exists"),),
    "minimal": True, "pods": (PodRequest("p", Resources(1000, 2**30, 0, 0, 1)),), "ephemeral": 1, "name": "other",
}


def test_every_field_of_a_question_is_in_its_key():
    assert {f.name for f in dataclasses.fields(Request)} == set(CHANGED), "a new Request field needs a value here"
    for name, value in CHANGED.items():
        assert question_key(dataclasses.replace(BASE, **{name: value})) != question_key(BASE), name
    # Pods differing only in a selector are different questions too.
    a = dataclasses.replace(BASE, pods=(PodRequest("p", NODE, {"zone": "a"}),))
    b = dataclasses.replace(BASE, pods=(PodRequest("p", NODE, {"zone": "b"}),))
    assert question_key(a) != question_key(b)
    # Equal questions built separately (a fresh dict) have equal keys.
    assert question_key(dataclasses.replace(BASE, node_selector={"zone": "a"})) == question_key(
        dataclasses.replace(BASE, node_selector=dict(zone="a")))


def test_same_question_same_second_is_not_searched_again():
    cal = calendar()
    first = cal.offers(BASE, 1000, 1)
    assert (cal.offers_searched, cal.offers_reused) == (1, 0)
    assert cal.offers(dataclasses.replace(BASE), 1000, 1) is first
    assert (cal.offers_searched, cal.offers_reused) == (1, 1)
    cal.offers(BASE, 1000, 2)  # another count, another question
    cal.offers(BASE, 1000, 1, namespace="ns")  # another namespace
    cal.offers(BASE, 1001, 1)  # the next second
    assert (cal.offers_searched, cal.offers_reused) == (4, 1)


@pytest.mark.parametrize("change", ["book", "pod", "node", "quota", "release"])
def test_a_change_means_a_new_search(change):
    cal = calendar()
    cal.book("b0", "ns", [("n0", Resources(1000, 2**30, 0, 0, 1))], 1000, 5000)
    before = cal.offers(BASE, 1000, 1, namespace="ns")
    {"book": lambda: cal.book("b1", "ns", [("n1", Resources(7000, 2**30, 0, 0, 1))], 1000, 9000),
     "pod": lambda: cal.set_pod("p", "n2", Resources(7000, 2**30, 0, 0, 1)),
     "node": lambda: cal.set_node("n3", NODE),
     "quota": lambda: cal.set_quota("ns", Resources(500, 2**40, 0, 0, 0)),
     "release": lambda: cal.release("b0")}[change]()
    after = cal.offers(BASE, 1000, 1, namespace="ns")
    assert after is not before
    assert cal.offers_searched == 2


def test_what_depends_on_the_nodes_alone_survives_a_booking_but_not_a_node_change():
    # A booking changes timelines only: the arrays rebuilt after it keep the nodes' free
    # capacity, name ranks and filter masks; a pod or a node change (a new node order) drops them.
    from execplanner.engine.filters import PodFilter
    from execplanner.engine.vector import node_arrays
    cal = calendar()
    flt = PodFilter.of({"zone": "a"}, ())
    first = node_arrays(cal)
    mask = first.passing(flt)
    cal.book("b1", "ns", (("n0", Resources(2000, 2**30, 0, 0, 1)),), 100, 200)
    after_booking = node_arrays(cal)
    assert after_booking is not first and after_booking.passing(flt) is mask
    assert after_booking.free is first.free and after_booking.peak[0].max() == 2000
    cal.set_pod("p1", "n1", Resources(1000, 2**30, 0, 0, 1))
    after_pod = node_arrays(cal)
    assert after_pod.passing(flt) is not mask and after_pod.free is not first.free
    assert sorted(after_pod.free[0]) == [7000, 8000, 8000]
    cal.set_node("n2", NODE, {"zone": "b"})
    assert node_arrays(cal).passing(flt).sum() == 2


def test_arrays_after_bookings_are_spliced_and_equal_a_fresh_build():
    # Bookings change timelines only: node_arrays copies the changed nodes' segments into the
    # last arrays (NodeArrays.updated) instead of building them anew, and the result is the same.
    import numpy as np

    from execplanner.engine.vector import NodeArrays, node_arrays
    cal = Calendar()
    for i in range(6):
        cal.set_node(f"n{i}", NODE, {"zone": "a"})
    first = node_arrays(cal)
    cal.book("b1", "ns", (("n1", Resources(2000, 2**30, 0, 0, 1)),), 100, 200)
    cal.book("b2", "ns", (("n4", Resources(1000, 2**30, 0, 0, 1)),), 150, 400)
    cal.book("b3", "ns", (("n4", Resources(3000, 2**30, 0, 0, 1)),), 50, 120)
    spliced = node_arrays(cal)
    assert spliced is not first and spliced.free is first.free
    fresh = NodeArrays(cal.by_cpu)
    for field in ("times", "slack", "peak", "lengths", "seg_start", "seg_end", "node_of", "keys", "least_slack"):
        assert np.array_equal(getattr(spliced, field), getattr(fresh, field)), field
    assert spliced.booked_rows == fresh.booked_rows
    cal.set_quota("ns", Resources(64000, 2**40, 0, 0, 100))  # no timeline changed: the same arrays
    assert node_arrays(cal) is spliced
