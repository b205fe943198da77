"""The operator's one timer queue for all plans (timerqueue.TimerQueue)."""
import asyncio

from execplanner.operator.timerqueue import TimerQueue


async def _run(queue: TimerQueue, seconds: float) -> None:
    task = asyncio.ensure_future(queue.run())
    await asyncio.sleep(seconds)
    task.cancel()


async def test_a_step_runs_when_woken_and_again_when_it_asked():
    runs: list[str] = []

    async def step(key: str):
        runs.append(key)
        return 0.05 if runs.count(key) < 3 else None

    queue = TimerQueue(step, workers=2)
    queue.wake("a")
    await _run(queue, 0.4)
    assert runs == ["a", "a", "a"]


async def test_a_key_never_runs_twice_at_once_and_a_wake_while_running_runs_it_again():
    running, most, runs = set(), 0, []

    async def step(key: str):
        nonlocal most
        running.add(key)
        most = max(most, len(running))
        runs.append(key)
        await asyncio.sleep(0.05)
        running.discard(key)
        return None

    queue = TimerQueue(step, workers=4)
    queue.wake("a")
    task = asyncio.ensure_future(queue.run())
    await asyncio.sleep(0.01)
    queue.wake("a")  # while its first step runs
    queue.wake("a")  # once is enough
    await asyncio.sleep(0.3)
    task.cancel()
    assert runs == ["a", "a"] and most == 1


async def test_the_earlier_of_two_times_wins_and_a_wake_beats_both():
    seen: list[tuple[str, float]] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def step(key: str):
        seen.append((key, loop.time() - t0))
        return None

    queue = TimerQueue(step, workers=1, clock=loop.time)
    queue.at("a", 0.3)
    queue.at("a", 0.1)
    queue.at("a", 0.5)
    queue.at("b", 5.0)
    queue.wake("b")
    await _run(queue, 0.45)
    assert [k for k, _ in seen] == ["b", "a"]
    assert 0.08 <= seen[1][1] <= 0.3


async def test_a_failing_step_is_retried_after_a_back_off():
    calls = 0

    async def step(key: str):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the API server said no")
        return None

    queue = TimerQueue(step, workers=1)
    queue.wake("a")
    await _run(queue, 1.5)  # first back-off: 1 s
    assert calls == 2


async def test_ten_thousand_waiting_keys_take_no_steps():
    steps = 0

    async def step(key: str):
        nonlocal steps
        steps += 1
        return 3600.0

    queue = TimerQueue(step, workers=8)
    for i in range(10_000):
        queue.wake(str(i))
    await _run(queue, 1.0)
    assert steps == 10_000 and len(queue) == 10_000  # each ran once and now waits an hour


async def test_urgent_keys_go_first_then_in_the_order_they_became_due():
    order: list[str] = []

    async def step(key: str):
        order.append(key)
        return None

    queue = TimerQueue(step, workers=1, urgency=lambda key: 0 if key.startswith("new") else 1)
    for key in ("old-1", "new-1", "old-2", "new-2"):
        queue.wake(key)
    await _run(queue, 0.2)
    assert order == ["new-1", "new-2", "old-1", "old-2"]
