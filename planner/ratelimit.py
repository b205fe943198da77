"""Per-caller request rates on the costly endpoints (POST /accepts, /offersets, /uws/jobs): a
token bucket per caller, `per_minute` requests a minute with bursts up to a minute's worth.
A caller is a user (by the name the token gives) or, without a token, the client's address:
anonymous callers from one address share one bucket. Buckets are kept for the callers seen
most recently (bounded memory); a bucket forgotten is full again."""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_CALLERS = 100_000


class RateLimiter:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 max_callers: int = MAX_CALLERS) -> None:
        self.per_minute = per_minute
        self.clock = clock
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, when)

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0

    def take(self, caller: str) -> float:
        """Take one request for `caller`: 0 when it may go ahead, else the seconds until it may."""
        if not self.enabled:
            return 0.0
        now, capacity, rate = self.clock(), float(self.per_minute), self.per_minute / 60.0
        tokens, when = self._buckets.pop(caller, (capacity, now))
        tokens = min(capacity, tokens + (now - when) * rate)
        if tokens >= 1.0:
            self._buckets[caller] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[caller] = (tokens, now)
            wait = (1.0 - tokens) / rate
        while len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)
        return wait

    @staticmethod
    def retry_after(wait: float) -> int:
        return max(1, math.ceil(wait))
