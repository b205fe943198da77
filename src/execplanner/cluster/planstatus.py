"""A plan's status, read into and written from the capacity calendar: the one translation
between engine placements and status.booking / status.offers, shared by the operator (which
books) and the planner service (which only reads plans through its watches).

A plan's booking has the plan's UID as its id, which is also the label on every pod made
for it, so the engine counts those pods once. A Manual plan's offers are holds with ids
"<uid>#<offer id>" that lapse at their expiry.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from execplanner.engine import Calendar, Resources, format_cpu, format_memory, parse_cpu, parse_instant, parse_memory

HOLDING_PHASES = ("Booked", "Starting", "Running")


def hold_id(uid: str, offer_id: str) -> str:
    return f"{uid}#{offer_id}"


def placements_to_status(placements: Iterable[tuple[str, Resources]],
                         pods: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One entry per pod; with `pods` (the engine's pod names, in the same order) each entry
    names its pod, as a chart task's post-renderer needs ("Deployment/web#0")."""
    out = [{"node": node, "cores": format_cpu(v.cpu), "memory": format_memory(v.memory), "gpus": v.gpu}
           for node, v in placements]
    for entry, pod in zip(out, pods or ()):
        entry["pod"] = pod
    return out


def placements_from_status(entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, Resources]]:
    return [(e["node"], Resources(parse_cpu(e["cores"], "placements.cores"), parse_memory(e["memory"], "placements.memory"),
                                  int(e.get("gpus") or 0), 0, 1)) for e in entries]


def restore(cal: Calendar, uid: str, namespace: str, status: Mapping[str, Any],
            rejected: Iterable[str] = ()) -> None:
    """Put a plan's booking or holds into the calendar from its status (the operator at
    start-up; the planner on every plan event). Offers in `rejected` hold nothing. Raises
    Conflict if the calendar cannot hold them."""
    phase = status.get("phase")
    if phase in HOLDING_PHASES and status.get("booking"):
        b = status["booking"]
        cal.book(uid, namespace, placements_from_status(b.get("placements") or []),
                 parse_instant(b["start"], "booking.start"), parse_instant(b["end"], "booking.end"))
    elif phase == "Offered":
        turned_down = set(rejected)
        for o in status.get("offers") or []:
            if str(o["id"]) in turned_down:
                continue
            cal.book(hold_id(uid, str(o["id"])), namespace, placements_from_status(o.get("placements") or []),
                     parse_instant(o["start"], "offer.start"), parse_instant(o["end"], "offer.end"),
                     expires=parse_instant(o["expires"], "offer.expires"))
