"""The web page for people (docs/web.md): served at / with its assets (planner/web/), and the
reads it needs besides the IVOA protocols, each as public as the page itself:

- GET /calendar/compact: /calendar's content as numbers (a tenth of its size, made ten times
  faster), which the page draws: 1,000 nodes and 10,000 bookings paint within a second;
- GET /nodes: the nodes and the labels that group them into pools (settings.web_group_labels);
- GET /calendar/version: a version of the calendar and of the caller's own plans, so the page
  fetches /calendar again only when something changed (polled every few seconds);
- GET /bookings: the caller's bookings and held offers, each with its state, start, end,
  size, nodes, and where to cancel it and read its log (through the IVOA routes).

The page uses only the public API: what it can do a script can do too. The page's settings
(sign-in at the site's OpenID Connect issuer, the Grafana link) are written into the HTML as
a JSON data block; nothing else is templated.
"""
from __future__ import annotations

import hashlib
import json
import time
import weakref
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from execplanner.engine import UnitError, format_cpu, format_instant, format_memory, parse_cpu, parse_memory

from ..cache import OFFERSET_LABEL, UWS_LABEL, session_uuid
from .broker import NAME_ANNOTATION, session_state
from .common import Problem, answer, base_url, caller, service
from .uws import RUNID_ANNOTATION, job_phase

routes = web.RouteTableDef()
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".svg": "image/svg+xml", ".png": "image/png"}
CONFIG_MARK = "<!--EXECPLANNER_CONFIG-->"
VERSION_MARK = "execplanner.web.version"  # kept in Calendar.derived, which every change of the calendar clears
ACTIVE_SESSION = ("OFFERED", "ACCEPTED", "WAITING", "PREPARING", "RUNNING")
CANCELLABLE_SESSION = ("WAITING", "PREPARING", "RUNNING")


# -- the page and its assets ------------------------------------------------------------------------

class _Assets:
    """planner/web/ read once (a few small files), with ETags for cheap revalidation."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str, str]] = {}
        self.index = ""
        folder = resources.files("execplanner.planner") / "web"
        for entry in folder.iterdir():
            name = entry.name
            if name == "index.html":
                self.index = entry.read_text(encoding="utf-8")
            suffix = name[name.rfind("."):] if "." in name else ""
            if suffix in ASSET_TYPES and entry.is_file():
                data = entry.read_bytes()
                self.files[name] = (data, ASSET_TYPES[suffix], '"' + hashlib.sha256(data).hexdigest()[:20] + '"')


_assets: _Assets | None = None


def assets() -> _Assets:
    global _assets
    if _assets is None:
        _assets = _Assets()
    return _assets


def page_config(request: web.Request) -> dict[str, Any]:
    s = service(request).settings
    sign_in = None
    if s.web_oidc_authorization_url and s.web_oidc_token_url:
        sign_in = {"authorizationUrl": s.web_oidc_authorization_url, "tokenUrl": s.web_oidc_token_url,
                   "clientId": s.web_oidc_client_id, "scopes": s.web_oidc_scopes}
    return {"signIn": sign_in, "grafanaUrl": s.web_grafana_url or None, "horizonHours": 24 * s.horizon_days,
            "anonymousAccepts": s.anonymous_accepts, "anonymousCalendar": s.anonymous_calendar}


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else None


def _security_headers(config: dict[str, Any]) -> dict[str, str]:
    token_origin = _origin(config["signIn"]["tokenUrl"]) if config["signIn"] else None
    connect = "'self'" + (f" {token_origin}" if token_origin else "")
    csp = (f"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src {connect}; "
           "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
    return {"Content-Security-Policy": csp, "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache"}


@routes.get("/")
async def page(request: web.Request) -> web.Response:
    """The page: index.html with the page's settings as a JSON data block (not a script)."""
    config = page_config(request)
    data = json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = assets().index.replace(CONFIG_MARK, data)
    return web.Response(text=text, content_type="text/html", charset="utf-8", headers=_security_headers(config))


@routes.get("/web/{asset}")
async def asset(request: web.Request) -> web.Response:
    found = assets().files.get(request.match_info["asset"])
    if found is None:
        raise web.HTTPNotFound()
    data, ctype, etag = found
    headers = {"ETag": etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers={**headers, "Content-Type": ctype})


# -- GET /nodes --------------------------------------------------------------------------------------

@routes.get("/nodes")
async def nodes(request: web.Request) -> web.Response:
    svc = service(request)
    await caller(request, required=not svc.settings.anonymous_calendar)
    keys = list(svc.settings.web_group_labels)
    out = []
    for name, node in sorted(svc.cache.calendar.nodes.items()):
        labels = {k: node.labels[k] for k in keys if k in node.labels}
        out.append({"name": name, "ready": node.ready, "labels": labels})
    return answer(request, {"groupLabels": keys, "nodes": out})


# -- GET /calendar/compact ---------------------------------------------------------------------------

def display_name(plan: dict[str, Any]) -> str:
    """What the caller called it: an offer set's name, a UWS job's runId, else the plan's name."""
    meta = plan["metadata"]
    annotations = meta.get("annotations") or {}
    return annotations.get(NAME_ANNOTATION) or annotations.get(RUNID_ANNOTATION) or meta["name"]


KINDS = ("booked", "running", "held")


def _hours(request: web.Request, svc) -> float:
    try:
        hours = float(request.query.get("hours", "24"))
    except ValueError:
        raise Problem(400, "hours must be a number", "hours") from None
    if not 0 < hours <= 24 * svc.settings.horizon_days:  # also refuses nan
        raise Problem(400, f"hours must be more than 0 and at most {24 * svc.settings.horizon_days}", "hours")
    return hours


@routes.get("/calendar/compact")
async def compact(request: web.Request) -> web.Response:
    """GET /calendar's content as numbers, for drawing (the web page reads this): sizes in
    millicores, bytes and GPUs, instants in seconds after `from`, and a booking as [start, end,
    millicores, bytes, gpus, kind, name], where kind indexes `kinds` and name indexes `names`
    (-1 for everyone else's: only the caller's own bookings are named, as on /calendar). A
    tenth of /calendar's size, made without formatting a single quantity or time. The names are
    what the caller called their plans (an offer set's name, a UWS job's runId, else the plan's)."""
    svc = service(request)
    who = await caller(request, required=not svc.settings.anonymous_calendar)
    hours = _hours(request, svc)
    now = int(time.time())
    until = now + int(hours * 3600)
    cal, cache = svc.cache.calendar, svc.cache
    index: dict[str, list] = {}
    nodes = []
    for name, node in sorted(cal.nodes.items()):
        a, b = node.allocatable, node.base
        entry = {"name": name, "ready": node.ready, "allocatable": [a.cpu, a.memory, a.gpu],
                 "used": [b.cpu, b.memory, b.gpu], "bookings": []}
        index[name] = entry["bookings"]
        nodes.append(entry)
    names: list[str] = []
    numbered: dict[str, int] = {}
    for booking in list(cal.bookings.values()):
        if booking.end <= now or booking.start >= until:
            continue
        key = cache.by_uid.get(booking.id.split("#", 1)[0])
        plan = cache.plans.get(key) if key else None
        named = -1
        if plan is not None and who is not None and plan["metadata"]["namespace"] == who.namespace:
            named = numbered.setdefault(plan["metadata"]["name"], len(numbered))
            if named == len(names):
                names.append(display_name(plan))
        if booking.expires is not None:
            kind = 2
        else:
            kind = 1 if ((plan or {}).get("status") or {}).get("phase") == "Running" else 0
        start, end = max(booking.start, now) - now, booking.end - now
        for node_name, v in booking.per_node.items():
            found = index.get(node_name)
            if found is not None:
                found.append([start, end, v.cpu, v.memory, v.gpu, kind, named])
    return answer(request, {"now": format_instant(now), "from": format_instant(now), "to": format_instant(until),
                            "units": ["millicores", "bytes", "gpus"], "kinds": list(KINDS), "names": names,
                            "nodes": nodes})


# -- GET /calendar/version ---------------------------------------------------------------------------

_versions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def calendar_version(calendar) -> int:
    """A number that grows whenever the calendar changed since it was last asked (nodes, pods,
    bookings, holds, quotas): the engine clears Calendar.derived on every change, and the mark
    kept there goes with it."""
    count = _versions.get(calendar, 0)
    if VERSION_MARK not in calendar.derived:
        count += 1
        _versions[calendar] = count
        calendar.derived[VERSION_MARK] = True
    return count


def _own_fingerprint(svc, namespace: str) -> str:
    """A short digest of the caller's plans and task runs (their resourceVersions)."""
    digest = hashlib.sha256()
    for source in (svc.cache.plans, svc.cache.runs):
        for (ns, name), obj in sorted(list(source.items())):
            if ns == namespace:
                digest.update(f"{name}={obj['metadata'].get('resourceVersion', '')};".encode())
        digest.update(b"|")
    return digest.hexdigest()[:16]


@routes.get("/calendar/version")
async def version(request: web.Request) -> web.Response:
    svc = service(request)
    who = await caller(request, required=not svc.settings.anonymous_calendar)
    text = str(calendar_version(svc.cache.calendar))
    if who is not None:
        text += "-" + _own_fingerprint(svc, who.namespace)
    return answer(request, {"version": text})


# -- GET /bookings -----------------------------------------------------------------------------------

def _size(entry: dict[str, Any]) -> dict[str, Any]:
    """Cores and memory as the API writes quantities (a status the operator wrote, shown as it is
    when it cannot be read)."""
    def read(parse, fmt, value):
        if value is None:
            return None
        try:
            return fmt(parse(value, "size"))
        except (UnitError, ValueError, TypeError):
            return str(value)
    return {"cores": read(parse_cpu, format_cpu, entry.get("cores")),
            "memory": read(parse_memory, format_memory, entry.get("memory")), "gpus": entry.get("gpus") or 0}


def _nodes_of(entry: dict[str, Any]) -> list[str]:
    return sorted({p["node"] for p in entry.get("placements") or [] if isinstance(p, dict) and p.get("node")})


def booking_entries(base: str, plan: dict[str, Any], now: int) -> list[dict[str, Any]]:
    """What the caller sees of one of their plans in "my bookings" (pure)."""
    meta, status = plan["metadata"], plan.get("status") or {}
    labels = meta.get("labels") or {}
    phase = status.get("phase") or "Pending"
    booking = status.get("booking") or None
    common = {"plan": meta["name"], "phase": phase, "message": status.get("message") or None,
              "created": meta.get("creationTimestamp")}
    osid = labels.get(OFFERSET_LABEL)
    if osid:
        common.update(source="offerset", offerset=osid, name=display_name(plan))
        out = []
        rejected = set((plan.get("spec") or {}).get("rejectedOffers") or [])
        for offer in status.get("offers") or []:
            oid = str(offer.get("id"))
            state = session_state(plan, oid, now)
            if booking and str(booking.get("offer")) == oid:
                entry = booking
            elif state in ACTIVE_SESSION and oid not in rejected:
                entry = offer
            else:
                continue
            sid = session_uuid(osid, oid)
            href = f"{base}/sessions/{sid}"
            ran = bool(status.get("taskRun")) and state in ("RUNNING", "COMPLETED", "FAILED")
            out.append({**common, "offer": oid, "session": sid, "href": href, "state": state,
                        "start": entry.get("start"), "end": entry.get("end"), **_size(entry),
                        "nodes": _nodes_of(entry), "expires": offer.get("expires") if state == "OFFERED" else None,
                        "cancel": href if state in CANCELLABLE_SESSION else None,
                        "log": f"{href}/log" if ran else None})
        return out
    if not booking:
        return []
    if labels.get(UWS_LABEL) == "true":
        href = f"{base}/uws/jobs/{meta['name']}"
        state = job_phase(plan)
        name = display_name(plan)
        extra = {"source": "uws", "href": href, "cancel": f"{href}/phase" if state in ("QUEUED", "EXECUTING") else None,
                 "log": f"{href}/results/log" if state in ("EXECUTING", "COMPLETED", "ERROR") and
                 status.get("taskRun") else None}
    else:  # made with kubectl in the caller's namespace: seen here, changed with kubectl
        state, name = phase.upper(), display_name(plan)
        extra = {"source": "plan", "href": None, "cancel": None, "log": None}
    return [{**common, "name": name, "state": state, "start": booking.get("start"), "end": booking.get("end"),
             **_size(booking), "nodes": _nodes_of(booking), "expires": None, "offer": booking.get("offer"), **extra}]


@routes.get("/bookings")
async def bookings(request: web.Request) -> web.Response:
    who = await caller(request)
    assert who is not None
    svc, now, base = service(request), int(time.time()), base_url(request)
    out: list[dict[str, Any]] = []
    for (ns, _), plan in list(svc.cache.plans.items()):
        if ns == who.namespace:
            out += booking_entries(base, plan, now)
    out.sort(key=lambda b: (b.get("start") or "", b["plan"], str(b.get("offer"))))
    return answer(request, {"bookings": out})


# -- the OpenAPI document's part (planner/http/openapi.py adds it) -------------------------------------

def openapi_paths(op, query, content) -> dict[str, Any]:
    """These routes in the OpenAPI document, made with openapi.py's own helpers."""
    return {
        "/nodes": {"get": op("The nodes and the labels that group them into pools (the web page's groups)",
                             {"200": {"description": "nodes", "content": content("Nodes")}}, secure=False)},
        "/calendar/compact": {"get": op("The calendar as numbers, for drawing: /calendar's content in millicores, bytes, "
                                        "GPUs and seconds", {"200": {"description": "the calendar",
                                                                     "content": content("CompactCalendar")}},
                                        params=[query("hours", {"type": "number", "exclusiveMinimum": 0})],
                                        secure=False)},
        "/calendar/version": {"get": op("A version of the calendar and of the caller's own plans: fetch /calendar "
                                        "again when it changes", {"200": {"description": "the version",
                                                                          "content": content("CalendarVersion")}},
                                        secure=False)},
        "/bookings": {"get": op("The caller's bookings and held offers: state, start, end, size, nodes, and where "
                                "to cancel them and read their logs", {"200": {"description": "bookings",
                                                                               "content": content("Bookings")}})},
    }
