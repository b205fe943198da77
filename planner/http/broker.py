"""The IVOA ExecutionBroker: offer sets and sessions.

An offer set is one ExecutionPlan with acceptPolicy Manual (a container's or a helm chart's);
its offers (status.offers) are the sessions. The operator holds each offer's capacity until it
expires, books the one accepted and releases its siblings; this module only translates. Session
states follow the plan's phase (protocols.md section 4). The documents are written as the
draft types them: `requested` as the client sent it (kept on the plan, REQUEST_ANNOTATION),
`offered` cores and memory as integers (memory in GiB), messages as its MessageItem, and no
`result` (the draft's is YES or NO) while the offers are being made.
"""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from aiohttp import web
from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.api import ivoa
from execplanner.api.plan import NOTEBOOK_TYPES
from execplanner.api.units import GIB, UnitError, parse_cpu, parse_memory
from execplanner.cluster import allowlist
from execplanner.engine import format_duration, parse_instant

from .. import tasks
from ..cache import OFFERSET_LABEL, OWNER_ANNOTATION, session_uuid
from ..identity import Identity
from .common import Problem, answer, base_url, caller, costly_caller, not_found, read_body, service, with_site_defaults
from .kubeerrors import api_problem

routes = web.RouteTableDef()
NAME_ANNOTATION = "execplanner.io/name"
REQUEST_ANNOTATION = "execplanner.io/request"
PHASE_STATE = {"Booked": "WAITING", "Starting": "PREPARING", "Running": "RUNNING", "Completed": "COMPLETED",
               "Failed": "FAILED", "Cancelled": "CANCELLED"}
UPDATES = ("ACCEPTED", "REJECTED", "CANCELLED")
NOTE_LIMIT = 32 * 1024  # the longest request note kept on a plan
# The draft's memory units (ComputeUnitsEnum) tried in turn for an offer's memory; GiB is its default.
MEMORY_UNITS = (("GiB", 2 ** 30), ("GB", 10 ** 9), ("MiB", 2 ** 20), ("MB", 10 ** 6), ("kiB", 2 ** 10), ("kB", 10 ** 3))


def plan_name(offerset: str) -> str:
    return f"os-{offerset}"


# -- states -----------------------------------------------------------------------------------

def session_state(plan: dict[str, Any], offer_id: str, now: int) -> str:
    """The session state of one offer of a plan (pure)."""
    spec, status = plan.get("spec") or {}, plan.get("status") or {}
    phase = status.get("phase") or "Pending"
    booked = (status.get("booking") or {}).get("offer")
    if phase == "Pending":
        return "PROPOSED"
    if phase == "Offered":
        if offer_id in (spec.get("rejectedOffers") or []):
            return "REJECTED"
        if spec.get("acceptedOffer") == offer_id:
            return "ACCEPTED"
        offer = next((o for o in status.get("offers") or [] if str(o.get("id")) == offer_id), {})
        expires = offer.get("expires")
        return "EXPIRED" if expires and parse_instant(expires, "expires") <= now else "OFFERED"
    if phase == "Expired":
        return "EXPIRED"
    if phase == "Rejected":
        return "REJECTED"
    if phase in PHASE_STATE:
        if booked == offer_id:
            return PHASE_STATE[phase]
        return "CANCELLED" if phase == "Cancelled" and not booked else "REJECTED"
    return "PROPOSED"


def offerset_result(plan: dict[str, Any]) -> str:
    phase = (plan.get("status") or {}).get("phase") or "Pending"
    if phase == "Pending":
        return "PENDING"
    return "NO" if phase == "Rejected" and not (plan.get("status") or {}).get("offers") else "YES"


# -- documents --------------------------------------------------------------------------------

def _offerset_id(plan: dict[str, Any]) -> str:
    return plan["metadata"]["labels"][OFFERSET_LABEL]


def request_note(executable: dict[str, Any], requested: dict[str, Any]) -> str:
    """What the client sent, kept on the plan (REQUEST_ANNOTATION) for the sessions to echo: the
    executable and the requested blocks; the executable's environment or values go first when
    it all would be too long for an annotation."""
    for exe in (executable, {k: v for k, v in executable.items() if k not in ("environment", "values")},
                {"type": executable.get("type")}):
        text = json.dumps({"executable": exe, "requested": requested})
        if len(text) <= NOTE_LIMIT:
            return text
    return json.dumps({"executable": {"type": executable.get("type")}})


def _request(plan: dict[str, Any]) -> dict[str, Any]:
    raw = (plan["metadata"].get("annotations") or {}).get(REQUEST_ANNOTATION)
    try:
        note = json.loads(raw) if raw else {}
    except ValueError:
        note = {}
    return note if isinstance(note, dict) else {}


def _executable(plan: dict[str, Any]) -> Any:
    exe = _request(plan).get("executable")
    return exe if isinstance(exe, dict) else plan["spec"]["executable"]


def _requested(plan: dict[str, Any]) -> dict[str, Any]:
    """The requested blocks as the client sent them; for a plan made before they were kept,
    its spec's, in the draft's units (cores and GiB as numbers, the duration in ISO 8601)."""
    requested = _request(plan).get("requested")
    if isinstance(requested, dict):
        return requested
    spec = plan["spec"]
    out: dict[str, Any] = {"compute": {}, "schedule": {"duration": (spec["schedule"].get("duration") or {}).get("min"),
                                                       "start": spec["schedule"].get("start") or []}}
    resources = spec.get("resources") or {}
    for what, parse, number in (("cores", parse_cpu, _cores), ("memory", parse_memory, _gib)):
        if resources.get(what):
            try:
                out["compute"][what] = {k: number(parse(v, what)) for k, v in resources[what].items() if v is not None}
            except UnitError:
                pass
    return out


def _cores(millicores: int) -> int | float:
    return millicores // 1000 if millicores % 1000 == 0 else millicores / 1000


def _gib(nbytes: int) -> int | float:
    return nbytes // GIB if nbytes % GIB == 0 else nbytes / GIB


def _memory_offered(nbytes: int) -> dict[str, Any]:
    """Memory as the draft's MinMaxComputeLong: whole GiB (its default unit), else whole numbers
    of the largest unit that divides it (units: GB, MiB, MB, kiB, kB)."""
    for unit, size in MEMORY_UNITS:
        if nbytes % size == 0:
            out: dict[str, Any] = {"min": nbytes // size, "max": nbytes // size}
            return out if unit == "GiB" else {**out, "units": unit}
    return {"min": -(-nbytes // 1024), "max": -(-nbytes // 1024), "units": "kiB"}


def _offered(offer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """An offer's cores and memory as the draft writes them: integers (memory in GiB)."""
    cores = _cores(parse_cpu(offer["cores"], "cores"))
    return {"min": cores, "max": cores}, _memory_offered(parse_memory(offer["memory"], "memory"))


def message(text: str, level: str = "INFO") -> dict[str, Any]:
    """A message as the draft writes one (its MessageItem)."""
    return {"level": level, "message": text}


def session_doc(base: str, plan: dict[str, Any], offer: dict[str, Any], now: int) -> dict[str, Any]:
    oid, osid = str(offer["id"]), _offerset_id(plan)
    sid = session_uuid(osid, oid)
    status = plan.get("status") or {}
    state = session_state(plan, oid, now)
    start, end = offer["start"], offer["end"]
    lead = 0
    duration = format_duration(parse_instant(end, "end") - parse_instant(start, "start"))
    requested = _requested(plan)
    asked = requested.get("compute") or {}
    cores, memory = _offered(offer)
    level = "ERROR" if state == "FAILED" else "INFO"
    doc: dict[str, Any] = {
        "uuid": sid, "href": f"{base}/sessions/{sid}",
        "name": (plan["metadata"].get("annotations") or {}).get(NAME_ANNOTATION, plan["metadata"]["name"]),
        "created": plan["metadata"].get("creationTimestamp"),
        "messages": [message(status["message"], level)] if status.get("message") and state not in ("OFFERED",) else [],
        "offerset": {"uuid": osid, "href": f"{base}/offersets/{osid}"},
        "state": state,
        "executable": _executable(plan),
        "resources": {"compute": [{
            "type": ivoa.EB_SIMPLE_COMPUTE,
            "cores": {**({"requested": asked["cores"]} if "cores" in asked else {}), "offered": cores},
            "memory": {**({"requested": asked["memory"]} if "memory" in asked else {}), "offered": memory},
        }]},
        "schedule": {
            "requested": requested.get("schedule") or {},
            "preparing": {"start": f"{start}/PT{lead}S", "duration": "PT0S"},
            "executing": {"start": f"{start}/PT0S", "duration": duration},
            "releasing": {"start": f"{end}/PT0S", "duration": "PT0S"},
        },
        "options": [],
    }
    if state == "OFFERED":
        doc["expires"] = offer.get("expires")
        doc["options"] = [{"type": "uri:enum-value-option", "path": "state", "values": ["ACCEPTED", "REJECTED"]}]
    elif state in ("WAITING", "PREPARING", "RUNNING"):
        doc["options"] = [{"type": "uri:enum-value-option", "path": "state", "values": ["CANCELLED"]}]
    if state in ("WAITING", "PREPARING", "RUNNING", "COMPLETED", "FAILED") and status.get("taskRun"):
        doc["taskRun"] = status["taskRun"]
        doc["log"] = f"{base}/sessions/{sid}/log"
    doc.update(notebook_fields(plan, booked=state in ("WAITING", "PREPARING", "RUNNING", "COMPLETED"),
                               result_url=f"{base}/sessions/{sid}/result"))
    return doc


def notebook_fields(plan: dict[str, Any], booked: bool, result_url: str) -> dict[str, Any]:
    """A notebook plan's additions to its session (or job): a workshop's `sessions`; once booked,
    the sessions' `endpoints` (URL, and the Secret's name and key: the planner cannot read the
    token, and never sends it) and `endpoint`; and a kept batch result's URL."""
    spec, status = plan.get("spec") or {}, plan.get("status") or {}
    if (spec.get("executable") or {}).get("type") not in NOTEBOOK_TYPES:
        return {}
    out: dict[str, Any] = {"sessions": int(spec.get("sessions") or 1)}
    if booked and status.get("endpoints"):
        out["endpoints"] = [{k: e[k] for k in ("session", "url", "secret", "key") if e.get(k) is not None}
                            for e in status["endpoints"] if isinstance(e, dict)]
    if booked and status.get("endpoint"):
        out["endpoint"] = status["endpoint"]
    if booked and (status.get("result") or {}).get("configMap"):
        out["result"] = result_url
    return out


def offerset_doc(base: str, plan: dict[str, Any], now: int) -> dict[str, Any]:
    osid = _offerset_id(plan)
    status = plan.get("status") or {}
    offers = status.get("offers") or []
    result = offerset_result(plan)
    messages = []
    if result in ("NO", "PENDING") and status.get("message"):
        messages.append(message(status["message"], "WARN" if result == "NO" else "INFO"))
    elif result == "PENDING":
        messages.append(message("the offers are being prepared; GET this document again"))
    expires = min((o["expires"] for o in offers if o.get("expires")), default=None)
    return {
        "uuid": osid, "href": f"{base}/offersets/{osid}",
        "name": (plan["metadata"].get("annotations") or {}).get(NAME_ANNOTATION, plan["metadata"]["name"]),
        "created": plan["metadata"].get("creationTimestamp"),
        **({"expires": expires} if expires else {}),
        # The draft's result is YES or NO; while the offers are being prepared it has neither.
        **({"result": result} if result != "PENDING" else {}),
        "messages": messages,
        "offers": [session_doc(base, plan, o, now) for o in offers],
    }


# -- finding what the caller may see ------------------------------------------------------------

async def _plan_of_offerset(request: web.Request, who: Identity, osid: str) -> dict[str, Any]:
    svc = service(request)
    try:
        uuid.UUID(osid)
    except ValueError:
        raise not_found(f"offer set {osid}") from None
    key = svc.cache.offersets.get(osid)
    plan = svc.cache.plans.get(key) if key else None
    if plan is None:  # created a moment ago through another replica: ask the API server
        plan = await svc.kube.get_plan(who.namespace, plan_name(osid))
    if plan is None or plan["metadata"]["namespace"] != who.namespace:
        raise not_found(f"offer set {osid}")
    return plan


def _session(request: web.Request, who: Identity, sid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    svc = service(request)
    found = svc.cache.sessions.get(sid)
    plan = svc.cache.plans.get(found[0]) if found else None
    if plan is None or plan["metadata"]["namespace"] != who.namespace:
        raise not_found(f"session {sid}")
    offer = next((o for o in (plan.get("status") or {}).get("offers") or [] if str(o.get("id")) == found[1]), None)
    if offer is None:
        raise not_found(f"session {sid}")
    return plan, offer


# -- endpoints ------------------------------------------------------------------------------------

@routes.post("/offersets")
async def create_offerset(request: web.Request) -> web.Response:
    who = await costly_caller(request, "offersets")
    assert who is not None
    svc = service(request)
    body = await read_body(request)
    req = tasks.read_offerset(body, svc.settings.offerset_default_count)
    osid = str(uuid.uuid4())
    if req.spec["executable"]["type"] == "helm-chart":
        _may_fetch_chart(req.spec["executable"])
    plan = {
        "apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan",
        "metadata": {"name": plan_name(osid), "labels": {OFFERSET_LABEL: osid},
                     "annotations": {OWNER_ANNOTATION: who.user, NAME_ANNOTATION: req.name[:253],
                                     REQUEST_ANNOTATION: request_note(req.executable, req.requested)}},
        "spec": with_site_defaults(svc, req.spec),
    }
    try:
        if svc.settings.create_namespaces:
            await svc.kube.ensure_namespace(who.namespace, who.user)
        made = await svc.kube.create_plan(who.namespace, plan)
    except ApiException as e:
        raise api_problem(e, "the offer set") from None
    key = (who.namespace, made["metadata"]["name"])
    await svc.cache.wait_plan(key, lambda p: p is not None and (p.get("status") or {}).get("phase") not in (None, "Pending"),
                              svc.settings.offerset_wait_seconds)
    svc.metrics.answers.labels("offersets", "created").inc()
    location = f"{base_url(request)}/offersets/{osid}"
    raise web.HTTPSeeOther(location)


def _may_fetch_chart(executable: dict[str, Any]) -> None:
    """A chart from a source not on the chart allowlist is refused (403, naming the field)
    before the plan is made; the operator renders the others and sizes the offers by them."""
    why = allowlist.chart_allowed(executable["chart"], executable.get("repository"))
    if why:
        raise Problem(403, why, "executable.repository" if executable.get("repository") else "executable.chart")


@routes.get("/offersets")
async def list_offersets(request: web.Request) -> web.Response:
    who = await caller(request)
    svc, now, base = service(request), int(time.time()), base_url(request)
    docs = [offerset_doc(base, p, now) for (ns, _), p in list(svc.cache.plans.items())
            if ns == who.namespace and OFFERSET_LABEL in (p["metadata"].get("labels") or {})]
    docs.sort(key=lambda d: d.get("created") or "")
    return answer(request, {"offersets": docs})


@routes.get("/offersets/{uuid}")
async def get_offerset(request: web.Request) -> web.Response:
    who = await caller(request)
    plan = await _plan_of_offerset(request, who, request.match_info["uuid"])
    return answer(request, offerset_doc(base_url(request), plan, int(time.time())))


@routes.get("/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    who = await caller(request)
    svc, now, base = service(request), int(time.time()), base_url(request)
    docs = []
    for (ns, _), p in list(svc.cache.plans.items()):
        if ns == who.namespace and OFFERSET_LABEL in (p["metadata"].get("labels") or {}):
            docs += [session_doc(base, p, o, now) for o in (p.get("status") or {}).get("offers") or []]
    docs.sort(key=lambda d: (d.get("created") or "", d["uuid"]))
    return answer(request, {"sessions": docs})


@routes.get("/sessions/{uuid}")
async def get_session(request: web.Request) -> web.Response:
    who = await caller(request)
    plan, offer = _session(request, who, request.match_info["uuid"])
    return answer(request, session_doc(base_url(request), plan, offer, int(time.time())))


@routes.post("/sessions/{uuid}")
async def update_session(request: web.Request) -> web.Response:
    who = await caller(request)
    svc = service(request)
    sid = request.match_info["uuid"]
    plan, offer = _session(request, who, sid)
    value = _update_value(await read_body(request))
    oid, now = str(offer["id"]), int(time.time())
    state = session_state(plan, oid, now)
    allowed = {"ACCEPTED": ("OFFERED",), "REJECTED": ("OFFERED",),
               "CANCELLED": ("OFFERED", "ACCEPTED", "WAITING", "PREPARING", "RUNNING")}[value]
    if state not in allowed:
        raise Problem(409, f"the session is {state}; it can be set to {value} only when "
                           f"{' or '.join(allowed)}", "update.value")
    ns, name = plan["metadata"]["namespace"], plan["metadata"]["name"]
    try:
        if value == "ACCEPTED":
            await svc.kube.patch_spec(ns, name, {"acceptedOffer": oid})
        elif value == "CANCELLED":
            await svc.kube.patch_spec(ns, name, {"cancel": True})
        else:
            await _reject(svc, plan, oid)
    except ApiException as e:
        raise api_problem(e, "the session") from None
    svc.metrics.answers.labels("sessions", value).inc()
    # Answer once the operator has acted (or after a few seconds, with the state then).
    await svc.cache.wait_plan((ns, name), lambda p: p is None or session_state(p, oid, int(time.time())) != state
                              and not (value == "ACCEPTED" and session_state(p, oid, int(time.time())) == "ACCEPTED"),
                              5.0)
    plan, offer = _session(request, who, sid)
    return answer(request, session_doc(base_url(request), plan, offer, int(time.time())))


async def _reject(svc, plan: dict[str, Any], oid: str) -> None:
    """Add the offer to spec.rejectedOffers: read-modify-write guarded by resourceVersion."""
    ns, name = plan["metadata"]["namespace"], plan["metadata"]["name"]
    for _ in range(5):
        current = await svc.kube.get_plan(ns, name)
        if current is None:
            raise not_found("the session's offer set")
        rejected = list((current.get("spec") or {}).get("rejectedOffers") or [])
        if oid in rejected:
            return
        try:
            await svc.kube.patch_spec(ns, name, {"rejectedOffers": rejected + [oid]},
                                      resource_version=current["metadata"]["resourceVersion"])
            return
        except ApiException as e:
            if e.status != 409:
                raise
            await asyncio.sleep(0.05)
    raise Problem(409, "the offer set kept changing; try again", "update")


def _update_value(body: Any) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("update"), dict):
        raise Problem(400, "expected {\"update\": {\"type\": \"uri:enum-value-update\", \"path\": \"state\", "
                           "\"value\": ...}}", "update")
    update = body["update"]
    if update.get("type", "uri:enum-value-update") != "uri:enum-value-update":
        raise Problem(400, f"update type {update.get('type')!r} is not supported (uri:enum-value-update is)",
                      "update.type")
    if update.get("path") != "state":
        raise Problem(400, "only the session's state can be updated (path: state)", "update.path")
    value = update.get("value")
    if value not in UPDATES:
        raise Problem(400, f"state {value!r} cannot be requested (one of {', '.join(UPDATES)})", "update.value")
    return value


@routes.get("/sessions/{uuid}/log")
async def session_log(request: web.Request) -> web.Response:
    who = await caller(request)
    plan, _ = _session(request, who, request.match_info["uuid"])
    from .logs import task_log
    return await task_log(request, plan)


@routes.get("/sessions/{uuid}/result")
async def session_result(request: web.Request) -> web.Response:
    """A batch notebook's executed notebook, to its owner (application/x-ipynb+json)."""
    who = await caller(request)
    plan, offer = _session(request, who, request.match_info["uuid"])
    if (plan.get("status") or {}).get("booking", {}).get("offer") != str(offer["id"]):
        raise Problem(404, "this offer was not the one run: it has no result")
    from .logs import notebook_result
    return await notebook_result(request, plan)
