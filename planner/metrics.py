"""The planner's Prometheus metrics (prometheus-client), one registry per service so that
several services in one process (the tests) do not collide."""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, cache_age: Callable[[], float], nodes: Callable[[], float],
                 bookings: Callable[[], float], searches: Callable[[], tuple[int, int]]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram("execplanner_planner_request_seconds", "HTTP request latency.",
                                  ["route", "method", "status"], registry=self.registry, buckets=BUCKETS)
        self.answers = Counter("execplanner_planner_answers_total", "Answers given, by endpoint and result "
                               "(YES, NO, created, accepted ...).", ["endpoint", "result"], registry=self.registry)
        age = Gauge("execplanner_planner_cache_age_seconds", "Seconds since the stalest watch last heard from "
                    "the API server.", registry=self.registry)
        age.set_function(cache_age)
        n = Gauge("execplanner_planner_nodes", "Nodes in the planner's calendar.", registry=self.registry)
        n.set_function(nodes)
        b = Gauge("execplanner_planner_bookings", "Bookings and held offers in the planner's calendar.",
                  registry=self.registry)
        b.set_function(bookings)
        self.registry.register(_Searches(searches))


class _Searches(Collector):
    """The calendar's count of searches made and answers reused (Calendar.offers), read when scraped."""

    def __init__(self, read: Callable[[], tuple[int, int]]) -> None:
        self.read = read

    def collect(self):
        searched, reused = self.read()
        family = CounterMetricFamily("execplanner_planner_offer_searches", "Offer questions answered by the "
                                     "engine: searched, or reused (asked again in the same second with "
                                     "nothing changed).", labels=["result"])
        family.add_metric(["searched"], searched)
        family.add_metric(["reused"], reused)
        yield family
