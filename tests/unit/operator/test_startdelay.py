"""When a task booked "now" really runs (startdelay.StartDelay), on a hand-driven clock."""
import pytest

from execplanner.operator.startdelay import MAX_DELAY_S, StartDelay

from .handclock import Clock


def test_nothing_measured_and_nothing_waiting_is_now():
    assert StartDelay(16, Clock()).estimate() == 0.0


def test_start_up_is_the_median_time_from_when_the_pod_could_run_to_its_start():
    d = StartDelay(16, Clock())
    for could_run, ran in ((100, 100.5), (200, 202), (300, 301), (400, 399)):  # (clocks a second apart)
        d.started(could_run, ran)
    assert d.estimate() == pytest.approx(0.75)  # median of 0.5, 2, 1, 0


def test_a_backlog_of_launches_waits_at_the_measured_rate():
    clock = Clock()
    d = StartDelay(16, clock)
    d.started(0, 1)
    for i in range(20):  # 20 launches over the last 2 s: 10 per s
        d.launched(f"done{i}", took=0.5)
        clock.t += 0.1
    for i in range(30):
        d.booked_now(f"w{i}")
    assert d.estimate() == pytest.approx(1 + 30 / (20 / 2.0))
    d.launched("w0", took=0.5)  # one fewer waits, one more launch seen
    assert d.estimate() == pytest.approx(1 + 29 / (21 / 2.0))


def test_with_no_recent_rate_the_workers_and_the_launch_time_set_it():
    clock = Clock()
    d = StartDelay(4, clock)
    d.launched("old", took=0.5)
    clock.t += 60  # long ago: not in the rate's window
    for i in range(8):
        d.booked_now(f"w{i}")
    assert d.estimate() == pytest.approx(8 / (4 / 0.5))


def test_a_stalled_launcher_is_bounded_and_forgotten_plans_stop_counting():
    d = StartDelay(16, Clock())
    for i in range(5):
        d.launched(f"done{i}", took=100.0)
    for i in range(10_000):
        d.booked_now(f"w{i}")
    assert d.estimate() == MAX_DELAY_S
    for i in range(10_000):
        d.forget(f"w{i}")
    assert d.estimate() == 0.0
