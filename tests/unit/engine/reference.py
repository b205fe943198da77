"""The straightforward per-node loops that engine/vector.py replaces: the oracle its array
code is checked against (same answers, same node chosen)."""
from bisect import bisect_left, bisect_right

from execplanner.engine.fit import best_fit_key, candidates
from execplanner.engine.offers import _quota_room
from execplanner.engine.resources import Resources


def size_at(cal, low, high, flt, start, duration, namespace):
    end = start + duration
    room = _quota_room(cal, namespace, start, end)
    if room is not None:
        high = high.minimum(room)
        if not low.fits(high):
            return None
    best = None
    for node in candidates(cal, low, flt, descending=True):
        tl, f = node.timeline, node.free
        i = bisect_right(tl.times, start) - 1
        j = bisect_left(tl.times, end, i + 1)
        free = [f[r] - max(tl.cols[r][i:j]) for r in range(5)]
        if any(low[r] > free[r] for r in range(5)):
            continue
        size = Resources(min(high[0], free[0]), min(high[1], free[1]), min(high[2], free[2]), low[3], low[4])
        if best is None or size[:3] > best[:3]:
            best = size
    return best


def longest(cal, size, flt, start, min_duration, max_duration, namespace):
    until = start + max_duration
    quota = cal.quota_of(namespace)
    if quota is not None:
        until = cal.ns_timeline(namespace).run_end(size, quota, start, until)
    best, scored_after_full = None, -1
    for node in candidates(cal, size, flt):
        if scored_after_full >= cal.score_sample:
            break
        if scored_after_full >= 0:
            scored_after_full += 1
        end = node.timeline.run_end(size, node.free, start, until)
        if end - start < min_duration:
            continue
        key = (start - end, best_fit_key(node.free - size, node.name))
        if best is None or key < best[0]:
            best = (key, node)
        if end == until and scored_after_full < 0:
            scored_after_full = 0
    return None if best is None else (-best[0][0], best[1])
