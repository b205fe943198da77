"""Where bookings are made, held, accepted, restored and released: the only code that
writes to the calendar on a plan's behalf, and the only translation between engine offers
and the plan's status.

A plan's booking has the plan's UID as its id, which is also the label on every pod made
for it, so the engine counts those pods once. A Manual plan's offers are holds with ids
"<uid>#<offer id>" that lapse at their expiry.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from execplanner.planner.engine import (Calendar, Conflict, Offer, Resources, format_cpu, format_instant,
                                        format_memory, parse_cpu, parse_instant, parse_memory)

from .models import PlanSpec


@dataclass(frozen=True)
class Rejected:
    message: str


def hold_id(uid: str, offer_id: str) -> str:
    return f"{uid}#{offer_id}"


def placements_to_status(placements: Iterable[tuple[str, Resources]]) -> list[dict[str, Any]]:
    return [{"node": node, "cores": format_cpu(v.cpu), "memory": format_memory(v.memory), "gpus": v.gpu}
            for node, v in placements]


def placements_from_status(entries: Iterable[Mapping[str, Any]]) -> list[tuple[str, Resources]]:
    return [(e["node"], Resources(parse_cpu(e["cores"], "placements.cores"), parse_memory(e["memory"], "placements.memory"),
                                  int(e.get("gpus") or 0), 0, 1)) for e in entries]


def _summary(offer: Offer) -> dict[str, Any]:
    return {"start": format_instant(offer.start), "end": format_instant(offer.end), "cores": format_cpu(offer.cpu),
            "memory": format_memory(offer.memory), "gpus": offer.gpu}


def book_first(cal: Calendar, uid: str, namespace: str, spec: PlanSpec, now: int,
               tolerations: list[dict]) -> dict[str, Any] | Rejected:
    """acceptPolicy First: book the best offer at once. Returns status.booking, or why not."""
    result = cal.offers(spec.request(tolerations), now, count=1, namespace=namespace)
    if not result.offers:
        return Rejected(_reasons(result.reasons))
    offer = result.offers[0]
    cal.book(uid, namespace, offer.placements, offer.start, offer.end)
    return {"offer": "1", **_summary(offer), "placements": placements_to_status(offer.placements)}


def hold_offers(cal: Calendar, uid: str, namespace: str, spec: PlanSpec, now: int, expires: int,
                tolerations: list[dict]) -> list[dict[str, Any]] | Rejected:
    """acceptPolicy Manual: hold up to spec.offers alternatives until `expires`. Alternatives
    that cannot be held beside the earlier ones (they share capacity) are dropped."""
    result = cal.offers(spec.request(tolerations), now, count=spec.offers, namespace=namespace)
    held: list[dict[str, Any]] = []
    for offer in result.offers:
        offer_id = str(len(held) + 1)
        try:
            cal.book(hold_id(uid, offer_id), namespace, offer.placements, offer.start, offer.end, expires=expires)
        except Conflict:
            continue
        held.append({"id": offer_id, **_summary(offer), "expires": format_instant(expires),
                     "placements": placements_to_status(offer.placements)})
    if not held:
        return Rejected(_reasons(result.reasons))
    return held


def accept(cal: Calendar, uid: str, namespace: str, offers: list[Mapping[str, Any]], offer_id: str) -> dict[str, Any]:
    """Turn the chosen hold into the plan's booking and release its siblings, in one step.
    Raises KeyError for an unknown offer id, Conflict if it can no longer be booked."""
    chosen = next((o for o in offers if o.get("id") == offer_id), None)
    if chosen is None:
        raise KeyError(offer_id)
    placements = placements_from_status(chosen["placements"])
    start, end = parse_instant(chosen["start"], "offer.start"), parse_instant(chosen["end"], "offer.end")
    release(cal, uid, offers)
    cal.book(uid, namespace, placements, start, end)
    return {"offer": offer_id, **{k: chosen[k] for k in ("start", "end", "cores", "memory", "gpus")},
            "placements": chosen["placements"]}


def release(cal: Calendar, uid: str, offers: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """Free the plan's booking and holds (ids that are gone are ignored). Returns what that revoked."""
    revoked = cal.release(uid)
    for o in offers:
        revoked += cal.release(hold_id(uid, str(o.get("id"))))
    return revoked


HOLDING_PHASES = ("Booked", "Starting", "Running")


def restore(cal: Calendar, uid: str, namespace: str, status: Mapping[str, Any]) -> None:
    """Rebuild a plan's booking or holds in the calendar from its status (start-up). Raises
    Conflict if the calendar cannot hold it any more."""
    phase = status.get("phase")
    if phase in HOLDING_PHASES and status.get("booking"):
        b = status["booking"]
        cal.book(uid, namespace, placements_from_status(b.get("placements") or []),
                 parse_instant(b["start"], "booking.start"), parse_instant(b["end"], "booking.end"))
    elif phase == "Offered":
        for o in status.get("offers") or []:
            cal.book(hold_id(uid, str(o["id"])), namespace, placements_from_status(o.get("placements") or []),
                     parse_instant(o["start"], "offer.start"), parse_instant(o["end"], "offer.end"),
                     expires=parse_instant(o["expires"], "offer.expires"))


def _reasons(reasons) -> str:
    return "; ".join(r.message for r in reasons) or "no offer fits"
