"""GET /calendar: the bookings per node over the next hours, as the CLI draws them.

Everyone sees every node's capacity and when it is taken (that is what a planner is for);
only the caller's own bookings carry their plan's name. Anonymous callers may read it too
(settings.anonymous_calendar), without any names.
"""
from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from execplanner.engine import format_cpu, format_instant, format_memory
from .common import Problem, answer, caller, service

routes = web.RouteTableDef()


def _vector(v) -> dict[str, Any]:
    return {"cores": format_cpu(v.cpu), "memory": format_memory(v.memory), "gpus": v.gpu}


@routes.get("/calendar")
async def calendar(request: web.Request) -> web.Response:
    svc = service(request)
    who = await caller(request, required=not svc.settings.anonymous_calendar)  # anonymous: nothing is "mine"
    try:
        hours = float(request.query.get("hours", "24"))
    except ValueError:
        raise Problem(400, "hours must be a number", "hours") from None
    if not 0 < hours <= 24 * svc.settings.horizon_days:
        raise Problem(400, f"hours must be more than 0 and at most {24 * svc.settings.horizon_days}", "hours")
    now = int(time.time())
    until = now + int(hours * 3600)
    cal, cache = svc.cache.calendar, svc.cache
    nodes: dict[str, dict[str, Any]] = {}
    for name, node in sorted(cal.nodes.items()):
        nodes[name] = {"name": name, "allocatable": _vector(node.allocatable), "ready": node.ready,
                       "used": _vector(node.base), "bookings": []}
    for booking in list(cal.bookings.values()):
        if booking.end <= now or booking.start >= until:
            continue
        uid = booking.id.split("#", 1)[0]
        key = cache.by_uid.get(uid)
        plan = cache.plans.get(key) if key else None
        mine = plan is not None and who is not None and plan["metadata"]["namespace"] == who.namespace
        phase = ((plan or {}).get("status") or {}).get("phase")
        kind = "held" if booking.expires is not None else ("running" if phase == "Running" else "booked")
        for node_name, vector in booking.per_node.items():
            if node_name in nodes:
                nodes[node_name]["bookings"].append({
                    "start": format_instant(max(booking.start, now)), "end": format_instant(booking.end),
                    **_vector(vector), "mine": mine, "name": plan["metadata"]["name"] if mine else None,
                    "kind": kind})
    for entry in nodes.values():
        entry["bookings"].sort(key=lambda b: (b["start"], b["end"]))
    return answer(request, {"now": format_instant(now), "from": format_instant(now), "to": format_instant(until),
                            "nodes": list(nodes.values())})
