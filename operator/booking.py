"""Where bookings are made, held, accepted and released: the only code that writes to the
calendar on a plan's behalf (restoring them from status is planner.planstatus, shared with
the planner service)."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from execplanner.api.plan import PlanSpec
from execplanner.cluster.planstatus import (HOLDING_PHASES, hold_id, placements_from_status,  # noqa: F401 (re-exported)
                                            placements_to_status, restore)
from execplanner.engine import (Calendar, Conflict, Offer, Request, format_cpu, format_instant, format_memory,
                                parse_instant)
from execplanner.engine.specs import plan_request


@dataclass(frozen=True)
class Rejected:
    message: str


def _summary(offer: Offer) -> dict[str, Any]:
    return {"start": format_instant(offer.start), "end": format_instant(offer.end), "cores": format_cpu(offer.cpu),
            "memory": format_memory(offer.memory), "gpus": offer.gpu}


def _placements(offer: Offer) -> list[dict[str, Any]]:
    return placements_to_status(offer.placements, [a.pod for a in offer.assignments])


def book_first(cal: Calendar, uid: str, namespace: str, spec: PlanSpec, now: int,
               tolerations: list[dict], request: Request | None = None) -> dict[str, Any] | Rejected:
    """acceptPolicy First: book the best offer at once. Returns status.booking, or why not.
    `request` overrides the spec's own (a chart's footprint)."""
    result = cal.offers(request or plan_request(spec, tolerations), now, count=1, namespace=namespace)
    if not result.offers:
        return Rejected(_reasons(result.reasons))
    offer = result.offers[0]
    made = {"offer": "1", **_summary(offer), "placements": _placements(offer)}  # (first: if it raises, nothing is held)
    cal.book(uid, namespace, offer.placements, offer.start, offer.end)
    return made


def hold_offers(cal: Calendar, uid: str, namespace: str, spec: PlanSpec, now: int, expires: int,
                tolerations: list[dict], request: Request | None = None) -> list[dict[str, Any]] | Rejected:
    """acceptPolicy Manual: hold up to spec.offers alternatives until `expires`. Alternatives
    that cannot be held beside the earlier ones (they share capacity) are dropped."""
    result = cal.offers(request or plan_request(spec, tolerations), now, count=spec.offers, namespace=namespace)
    held: list[dict[str, Any]] = []
    for offer in result.offers:
        offer_id = str(len(held) + 1)
        entry = {"id": offer_id, **_summary(offer), "expires": format_instant(expires),
                 "placements": _placements(offer)}  # (first: if it raises, nothing is held)
        try:
            cal.book(hold_id(uid, offer_id), namespace, offer.placements, offer.start, offer.end, expires=expires)
        except Conflict:
            continue
        held.append(entry)
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


def _reasons(reasons) -> str:
    return "; ".join(r.message for r in reasons) or "no offer fits"
