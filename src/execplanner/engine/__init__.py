"""Capacity calendar, fit and offers over time: pure Python, no Kubernetes calls.

The engine is fed cluster state (nodes, pods, bookings, quotas) and answers "can this run, and
when?" exactly, per node, over any horizon. See calendar.Calendar for the state and its
invariant, fit.fit for placing pods over an interval, offers.offers for offers over time.
"""
from execplanner.api.units import (UnitError, format_cpu, format_duration, format_instant, format_memory, parse_count,
                                   parse_cpu, parse_duration, parse_instant, parse_interval, parse_memory,
                                   parse_memory_gib)

from .calendar import Booking, Calendar, Conflict, Revocation
from .filters import Taint, Toleration, taint_from_dict, toleration_from_dict
from .fit import Assignment, NoFit, Placement, PodRequest, fit
from .offers import Offer, OfferResult, Range, Request, offers
from .quota import quota_from_resourcequota, quota_vector
from .reasons import Reason
from .resources import Resources, pod_requests, resources_from_map

__all__ = [
    "Assignment", "Booking", "Calendar", "Conflict", "NoFit", "Offer", "OfferResult", "Placement", "PodRequest",
    "Range", "Reason", "Request", "Resources", "Revocation", "Taint", "Toleration", "UnitError", "fit",
    "format_cpu", "format_duration", "format_instant", "format_memory", "offers", "parse_count", "parse_cpu",
    "parse_duration", "parse_instant", "parse_interval", "parse_memory", "parse_memory_gib", "pod_requests",
    "quota_from_resourcequota", "quota_vector", "resources_from_map", "taint_from_dict", "toleration_from_dict",
]
