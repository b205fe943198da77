"""Planning-engine benchmark: synthetic clusters of 100, 1,000 and 5,000 nodes.

Run: python bench/engine_bench.py [sizes...]. Prints one JSON line per size. Not a test:
timings depend on the machine. Fixed seed, so runs are comparable.

Each node carries random running pods and 10 bookings over a 7-day horizon. Every node's first
hours are heavily booked, so offer queries whose `now` falls there cannot start at the window's
earliest bound and the search has to sweep forward; the other half of the offer queries start
later in the horizon. Both kinds go into the same percentiles.
"""
from __future__ import annotations

import gc
import json
import random
import sys
import time
from collections.abc import Callable

import psutil

from execplanner.engine import Calendar, Conflict, PodRequest, Range, Request, Resources, Taint

GI = 1 << 30
HOUR = 3600
DAY = 24 * HOUR
T0 = 1_800_000_000  # a fixed "now" (2027-01-15)
SEED = 20261124


def build(n_nodes: int, rng: random.Random) -> tuple[Calendar, int]:
    cal = Calendar()
    names = []
    for i in range(n_nodes):
        name = f"node-{i:05d}"
        kind = rng.random()
        if kind < 0.1:  # GPU nodes: tainted so only GPU work lands there
            alloc = Resources(64_000, 512 * GI, 8, 400 * GI, 110)
            cal.set_node(name, alloc, {"gpu": "a100"}, [Taint("nvidia.com/gpu", "present", "NoSchedule")])
        elif kind < 0.55:
            cal.set_node(name, Resources(32_000, 128 * GI, 0, 200 * GI, 110), {"size": "medium"})
        else:
            cal.set_node(name, Resources(64_000, 256 * GI, 0, 200 * GI, 110), {"size": "large"})
        names.append(name)
        for p in range(rng.randint(0, 5)):  # running pods, with no known end
            cal.set_pod(f"{name}/pod-{p}", name, Resources(rng.choice((100, 250, 500, 1000, 2000)),
                                                           rng.choice((256, 512, 1024, 4096)) * (1 << 20), pods=1))
    bookings = 0
    for name in names:
        node = cal.nodes[name]
        # Heavy at the start: leave less than 32 cores / 128Gi for the first 4-36 hours.
        heavy = Resources(max(1000, node.free.cpu - rng.randint(8_000, 24_000)), rng.randint(16, 64) * GI, pods=1)
        cal.book(f"{name}/b0", f"ns-{rng.randint(0, 49)}", [(name, heavy)], T0, T0 + rng.randint(4, 36) * HOUR)
        bookings += 1
        placed, attempts = 1, 0
        while placed < 10 and attempts < 100:
            attempts += 1
            start = T0 + rng.randint(0, 7 * DAY - HOUR)
            end = start + rng.randint(1, 24) * HOUR
            vec = Resources(rng.randint(1, 16) * 1000, rng.randint(2, 64) * GI, pods=1)
            try:
                cal.book(f"{name}/b{placed}", f"ns-{rng.randint(0, 49)}", [(name, vec)], start, end)
                bookings += 1
                placed += 1
            except Conflict:
                pass  # the slot was full: try another
    return cal, bookings


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1e6)
    return sorted(out)


def pct(samples: list[float], q: float) -> float:
    return round(samples[min(len(samples) - 1, int(q * len(samples)))], 3)


def run(n_nodes: int) -> dict[str, object]:
    rng = random.Random(SEED + n_nodes)
    cal, bookings = build(n_nodes, rng)
    gc.collect()
    rss = psutil.Process().memory_info().rss / 2**20
    q = random.Random(SEED)

    def fits_now() -> None:
        now = T0 + q.randint(0, 7 * DAY)
        cal.fit([PodRequest("p", Resources(4000, 8 * GI, pods=1))], now, now + HOUR)

    def offer() -> None:
        # Half the queries start inside the heavily booked first hours (sweep), half later.
        now = T0 + q.randint(0, 3 * HOUR) if q.random() < 0.5 else T0 + q.randint(2 * DAY, 4 * DAY)
        result = cal.offers(Request(cpu=Range(32_000, q.choice((32_000, 40_000, 48_000))),
                           memory=Range(128 * GI, q.choice((128, 160, 192)) * GI),
                           duration=Range(2 * HOUR, q.choice((2, 4, 6)) * HOUR)), now, count=3)
        swept[0] += bool(result.offers and result.offers[0].start > now)
        swept[1] += 1

    def chart() -> None:
        now = T0 + q.randint(0, 7 * DAY)
        pods = [PodRequest(f"pod-{i}", Resources(q.choice((500, 1000, 2000, 4000, 8000)),
                                                 q.choice((1, 2, 4, 8, 16)) * GI, pods=1)) for i in range(20)]
        cal.fit(pods, now, now + HOUR)

    def book_release() -> Callable[[], None]:
        now = T0 + q.randint(0, 7 * DAY)
        placement = cal.fit([PodRequest("p", Resources(1000, GI, pods=1))], now, now + HOUR)
        assert placement, placement

        def go() -> None:
            cal.book("bench", "bench", placement.placements, now, now + HOUR)
            cal.release("bench")
        return go

    swept = [0, 0]
    result: dict[str, object] = {"nodes": n_nodes, "bookings": bookings}
    fits = timed(fits_now, 300)
    offers_ms = timed(offer, 200)
    charts = timed(chart, 100)
    books = sorted(x for _ in range(300) for x in timed(book_release(), 1))
    gc.collect()
    rss_queried = psutil.Process().memory_info().rss / 2**20  # with the arrays the queries built
    started = time.perf_counter()
    broken = cal.check_invariant()
    assert not broken, broken[:5]
    invariant_s = time.perf_counter() - started
    print(f"# {n_nodes} nodes: {swept[0]} of {swept[1]} offer queries could not start at their earliest bound",
          file=sys.stderr)
    result.update({
        "fits_now_p50_ms": pct(fits, 0.5), "fits_now_p99_ms": pct(fits, 0.99),
        "offer_p50_ms": pct(offers_ms, 0.5), "offer_p99_ms": pct(offers_ms, 0.99),
        "chart_p99_ms": pct(charts, 0.99), "book_release_p99_ms": pct(books, 0.99),
        "rss_mb": round(rss, 1), "rss_after_queries_mb": round(rss_queried, 1),
        "invariant_check_s": round(invariant_s, 2),
    })
    return result


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [100, 1_000, 5_000]
    for n in sizes:
        print(json.dumps(run(n)), flush=True)
        gc.collect()


if __name__ == "__main__":
    main()
