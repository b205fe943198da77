"""The operator's record of a burst of starts waits for it (startburst.StartBurst), on a
hand-driven clock."""
import asyncio

import pytest

from execplanner.operator.startburst import MAX_HOLD_S, QUIET_S, StartBurst

from .handclock import Clock


def test_no_start_seen_holds_nothing():
    assert StartBurst(Clock()).hold() == 0.0


def test_the_record_waits_until_the_starts_pause():
    clock = Clock()
    burst = StartBurst(clock)
    for _ in range(20):  # 20 starts, 0.1 s apart
        burst.started()
        clock.t += 0.1
    assert burst.hold() == pytest.approx(QUIET_S - 0.1)
    clock.t += QUIET_S
    assert burst.hold() == 0.0


def test_steady_starts_hold_the_record_no_longer_than_the_cap():
    clock = Clock()
    burst = StartBurst(clock)
    for _ in range(int(MAX_HOLD_S * 10) - 1):  # starts 0.1 s apart, never a pause
        burst.started()
        clock.t += 0.1
    assert 0 < burst.hold() <= 0.1 + 1e-9
    clock.t += 0.1
    burst.started()
    assert burst.hold() == 0.0  # still starting, but held long enough
    clock.t += QUIET_S  # a pause: the next start begins a new burst
    burst.started()
    assert burst.hold() == pytest.approx(QUIET_S)


async def test_wait_returns_once_the_burst_is_over():
    loop = asyncio.get_running_loop()
    burst = StartBurst(loop.time)
    burst.started()
    t0 = loop.time()
    await burst.wait()
    assert loop.time() - t0 >= QUIET_S - 0.01
    t0 = loop.time()
    await burst.wait()  # no burst: at once
    assert loop.time() - t0 < 0.05
