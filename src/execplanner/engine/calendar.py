"""The capacity calendar: the cluster's state (capacity.Capacity) with its two questions beside
it, fit (can these pods run over this interval?) and offers (when and how can this run?).

Layers inside the engine, arrows down: calendar -> offers -> vector -> fit -> capacity ->
timeline, filters, quota, reasons, resources -> execplanner.api.units.
"""
from __future__ import annotations

from collections.abc import Sequence

from .capacity import DAY, Booking, Capacity, Conflict, NodeState, Revocation
from .fit import NoFit, Placement, PodRequest, fit
from .offers import OfferResult, Request, offers, question_key

__all__ = ["Booking", "Calendar", "Conflict", "NodeState", "Revocation"]

MAX_ANSWERS = 4096  # answers kept per second (a bound on memory, not a tuning knob)


class Calendar(Capacity):
    """The cluster state, and the searches over it. Not thread-safe: one writer at a time."""

    def __init__(self, horizon: int = 7 * DAY, score_sample: int = 50) -> None:
        super().__init__(horizon, score_sample)
        self.offers_reused = self.offers_searched = 0

    def fit(self, pods: Sequence[PodRequest], start: int, end: int, namespace: str | None = None) -> Placement | NoFit:
        return fit(self, pods, start, end, namespace)

    def offers(self, request: Request, now: int, count: int = 3, namespace: str | None = None) -> OfferResult:
        """offers.offers. The answer is a function of the calendar, the question and the second
        asked in, so an identical question in the same second, with nothing changed since, gets
        the same (shared: not to be modified) answer without the search; a service asked for
        the same few sizes by many clients saves most of its searching."""
        at, answers = self.derived.get("answers", (None, None))
        if at != now:
            answers = {}
            self.derived["answers"] = (now, answers)
        key = (question_key(request), count, namespace, self.horizon, self.score_sample)
        result = answers.get(key)
        if result is None:
            self.offers_searched += 1
            result = offers(self, request, now, count, namespace)
            if len(answers) < MAX_ANSWERS:
                answers[key] = result
        else:
            self.offers_reused += 1
        return result
