"""The plan spec model, its engine request, and where bookings are made (no cluster)."""
import pytest

from execplanner.operator import booking
from execplanner.api.plan import PlanSpec
from execplanner.engine import Calendar, Conflict, Resources, UnitError, parse_instant
from execplanner.engine.specs import plan_request

GI = 1 << 30
T0 = parse_instant("2026-11-24T15:00:00Z", "t")


def spec(**over):
    base = {"executable": {"type": "docker-container", "image": "busybox"},
            "resources": {"cores": {"min": 2, "max": "4"}, "memory": {"min": "4Gi"}},
            "schedule": {"duration": {"min": "30m", "max": "PT2H"}}}
    base.update(over)
    return PlanSpec.model_validate(base)


def cluster(nodes=2, cpu=8):
    cal = Calendar()
    for i in range(nodes):
        cal.set_node(f"n{i}", Resources(cpu * 1000, 32 * GI, 0, 0, 110))
    return cal


def test_request_reads_quantities_durations_windows_and_defaults_max_to_min():
    s = spec(schedule={"duration": {"min": "10m"}, "start": ["2026-11-24T15:00:00Z/PT1H"]},
             nodeSelector={"zone": "a"})
    r = plan_request(s)
    assert (r.cpu.min, r.cpu.max, r.memory.min, r.memory.max) == (2000, 4000, 4 * GI, 4 * GI)
    assert (r.duration.min, r.duration.max) == (600, 600)
    assert r.windows == ((T0, T0 + 3600),) and dict(r.node_selector) == {"zone": "a"}
    assert s.executable.is_container and not s.executable.is_helm


def test_bad_units_name_the_field():
    with pytest.raises(UnitError, match=r"spec\.resources\.memory\.min"):
        plan_request(spec(resources={"cores": {"min": 1}, "memory": {"min": "4Q"}}))
    with pytest.raises(UnitError, match=r"spec\.schedule\.start\[0\]"):
        plan_request(spec(schedule={"duration": {"min": "1h"}, "start": ["tomorrow"]}))


def test_book_first_books_the_best_offer_and_records_placements():
    cal = cluster()
    made = booking.book_first(cal, "uid-1", "ns", spec(), T0, [])
    assert made["cores"] == "4" and made["memory"] == "4Gi" and made["start"] == "2026-11-24T15:00:00Z"
    assert made["end"] == "2026-11-24T17:00:00Z" and len(made["placements"]) == 1
    assert "uid-1" in cal.bookings and not cal.check_invariant()
    # Replaying the same booking (a restart) is harmless; the status round-trips exactly.
    status = {"phase": "Booked", "booking": made}
    booking.restore(cal, "uid-1", "ns", status)
    assert booking.placements_from_status(made["placements"]) == list(cal.bookings["uid-1"].placements)


def test_book_first_rejects_with_the_resource_and_shortfall():
    cal = cluster(cpu=8)
    made = booking.book_first(cal, "uid-1", "ns", spec(resources={"cores": {"min": 64}, "memory": {"min": "1Gi"}}), T0, [])
    assert isinstance(made, booking.Rejected) and "cpu" in made.message and "64" in made.message
    assert not cal.bookings


def test_manual_offers_are_held_until_accepted_then_siblings_are_released():
    cal = cluster(nodes=1, cpu=8)
    cal.book("other", "ns", [("n0", Resources(6000, GI, 0, 0, 1))], T0, T0 + 3600)
    held = booking.hold_offers(cal, "uid-2", "ns", spec(offers=3), T0, T0 + 300, [])
    assert isinstance(held, list) and held and [o["id"] for o in held] == [str(i + 1) for i in range(len(held))]
    assert all(o["expires"] == "2026-11-24T15:05:00Z" for o in held)
    holds = {b for b in cal.bookings if b.startswith("uid-2#")}
    assert len(holds) == len(held) and not cal.check_invariant()
    made = booking.accept(cal, "uid-2", "ns", held, held[-1]["id"])
    assert made["offer"] == held[-1]["id"] and "uid-2" in cal.bookings
    assert not any(b.startswith("uid-2#") for b in cal.bookings)
    with pytest.raises(KeyError):
        booking.accept(cal, "uid-2", "ns", held, "99")


def test_release_frees_booking_and_holds_and_restore_refuses_what_no_longer_fits():
    cal = cluster(nodes=1, cpu=8)
    made = booking.book_first(cal, "uid-3", "ns", spec(), T0, [])
    booking.release(cal, "uid-3")
    assert not cal.bookings
    cal.book("intruder", "ns", [("n0", Resources(8000, GI, 0, 0, 1))], T0, T0 + 7200)
    with pytest.raises(Conflict):
        booking.restore(cal, "uid-3", "ns", {"phase": "Running", "booking": made})
