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

    queue = TimerQueue(step, pools=(2,))
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

    queue = TimerQueue(step, pools=(4,))
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

    queue = TimerQueue(step, pools=(1,), clock=loop.time)
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

    queue = TimerQueue(step, pools=(1,))
    queue.wake("a")
    await _run(queue, 1.5)  # first back-off: 1 s
    assert calls == 2


async def test_ten_thousand_waiting_keys_take_no_steps():
    steps = 0

    async def step(key: str):
        nonlocal steps
        steps += 1
        return 3600.0

    queue = TimerQueue(step, pools=(8,))
    for i in range(10_000):
        queue.wake(str(i))
    await _run(queue, 1.0)
    assert steps == 10_000 and len(queue) == 10_000  # each ran once and now waits an hour


async def test_each_urgency_has_its_own_workers():
    running: dict[str, int] = {"new": 0, "old": 0}
    most: dict[str, int] = {"new": 0, "old": 0}
    order: list[str] = []

    async def step(key: str):
        kind = key.split("-")[0]
        running[kind] += 1
        most[kind] = max(most[kind], running[kind])
        order.append(key)
        await asyncio.sleep(0.02)
        running[kind] -= 1
        return None

    queue = TimerQueue(step, pools=(3, 1), urgency=lambda key: 0 if key.startswith("new") else 1)
    for i in range(6):
        queue.wake(f"old-{i}")
        queue.wake(f"new-{i}")
    await _run(queue, 0.5)
    assert most == {"new": 3, "old": 1}, "the less urgent took more than their share"
    assert order.index("new-5") < order.index("old-3"), "the urgent waited behind the others"
    assert [k for k in order if k.startswith("old")] == [f"old-{i}" for i in range(6)]


async def test_a_gated_line_waits_at_its_gate_and_the_others_do_not():
    order: list[str] = []
    opened = asyncio.Event()

    async def step(key: str):
        order.append(key)
        return None

    async def gate():
        await opened.wait()

    queue = TimerQueue(step, pools=(2, 2), urgency=lambda key: 0 if key.startswith("book") else 1,
                       gates=(None, gate))
    for i in range(3):
        queue.wake(f"record-{i}")
        queue.wake(f"book-{i}")
    task = asyncio.ensure_future(queue.run())
    await asyncio.sleep(0.1)
    assert order == ["book-0", "book-1", "book-2"]
    queue.wake("record-0")  # already queued (held at the gate): not queued twice
    opened.set()
    await asyncio.sleep(0.1)
    task.cancel()
    assert sorted(order[3:]) == ["record-0", "record-1", "record-2"]
