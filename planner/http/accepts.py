"""The ExecutionPlanner note's capability query: "can you run this, and what can you offer?"

Answered from the live cache with the engine; nothing is booked. Anonymous callers may ask
(a setting); with a token, the caller's namespace quota is taken into account.

Charts are sized by rendering them, which downloads them: a chart whose source is not on the
chart allowlist is refused (403, naming taskinfo.repository or taskinfo.chart) before any
network access, and an anonymous caller is answered about a chart only from the render cache
or from an allowlisted repository, never from a local path. Renders are bounded (429 with
Retry-After when the render queue is full), and so is each caller's rate of questions.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

from aiohttp import web

from execplanner.api import ivoa
from execplanner.cluster import allowlist, charts
from execplanner.engine import Offer, OfferResult, format_instant

from .. import chartsize, tasks
from .common import Problem, answer, base_url, caller, costly_caller, read_body, service

routes = web.RouteTableDef()
# What a task type is served as: a container by UWS (/uws/jobs); a chart and a notebook through
# the ExecutionBroker's offer sets (/offersets), a notebook as Jupyter notebook servers, one
# per session, each with its endpoint (a batch notebook: a UWS job, /uws/jobs, with location).
NOTEBOOK_SERVICE = "uri://jupyter-notebook"
SERVICE_TYPES = {ivoa.NOTE_CONTAINER: "uri://docker-uws", ivoa.NOTE_HELM: "uri://kubernetes-helm",
                 **{name: NOTEBOOK_SERVICE for name in ivoa.NOTEBOOK_NAMES}}


def _endpoint(request: web.Request, tasktype: str, batch: bool = False) -> str:
    return base_url(request) + ("/uws/jobs" if tasktype == ivoa.NOTE_CONTAINER or batch else "/offersets")


@routes.get("/accepts")
async def accepts_type(request: web.Request) -> web.Response:
    """GET /accepts?tasktype=...: is this kind of task run here at all?"""
    await _may_ask(request)
    tasktype = request.query.get("tasktype")
    if not tasktype:
        raise Problem(400, "the tasktype query parameter is required", "tasktype")
    known = tasktype in SERVICE_TYPES
    body: dict[str, Any] = {"tasktype": tasktype, **_word(known)}
    if known:
        body.update(servicetype=SERVICE_TYPES[tasktype], serviceinfo={"endpoint": _endpoint(request, tasktype)})
    else:
        body.update(_reasons([f"task type {tasktype!r} is not run here (known: {', '.join(sorted(SERVICE_TYPES))})"]))
    service(request).metrics.answers.labels("accepts", body["responseword"]).inc()
    return answer(request, body)


@routes.post("/accepts")
async def accepts_task(request: web.Request) -> web.Response:
    svc = service(request)
    who = await costly_caller(request, "accepts", required=not svc.settings.anonymous_accepts)
    task = tasks.read_note_task(await read_body(request), svc.settings.uws_default_duration_seconds)
    refused = _refused(task)
    now = int(time.time())
    namespace = who.namespace if who else None
    question = tasks.note_request(task, now, svc.settings.accepts_headroom, svc.settings.accepts_duration_headroom,
                                  svc.settings.horizon_days * 86400)
    footprint = None
    if not refused and task.tasktype == ivoa.NOTE_HELM:
        ref, values = _chart_ref(task), _values(task)
        _may_fetch(svc, who, task, ref, values, namespace or "default")
        try:  # a chart's footprint (every pod it would create) is what is planned, per node
            footprint = await svc.charts.footprint(svc.cache.calendar, ref, values, namespace or "default")
            question = dataclasses.replace(question, pods=footprint.pod_requests())
        except chartsize.Refused as e:
            refused = str(e)
        except chartsize.Busy as e:
            raise Problem(429, str(e), headers={"Retry-After": str(e.retry_after)}) from None
    if refused:
        result = OfferResult([], [])
        reasons = [refused]
    else:
        result = svc.cache.calendar.offers(question, now, count=1, namespace=namespace)
        reasons = [r.message for r in result.reasons] or (["no offer fits"] if not result.offers else [])
    body: dict[str, Any] = {**_word(bool(result.offers)), "tasktype": task.tasktype,
                            "servicetype": SERVICE_TYPES[task.tasktype],
                            "serviceinfo": {"endpoint": _endpoint(request, task.tasktype, task.batch)}}
    offer = result.offers[0] if result.offers else None
    body["resources"] = _resources(task, offer, footprint, now, question.windows[0][1])  # type: ignore[index]
    if task.notebook:
        body["sessions"] = task.sessions
    if footprint is not None:
        body["footprint"] = footprint.describe()
    if offer is not None:
        body["start"] = format_instant(offer.start)
        body["nodes"] = sorted({a.node for a in offer.assignments})
    else:
        body["start"] = None
        body.update(_reasons(reasons))
    svc.metrics.answers.labels("accepts", body["responseword"]).inc()
    return answer(request, body)


def _resources(task: tasks.NoteTask, offer: Offer | None, footprint: charts.Footprint | None, now: int,
               latest: int) -> dict[str, Any]:
    """The answer's resources, as the note writes them: cores as numbers, memory with a unit,
    durations in the form they were asked in. A YES offers its maxima: as much as is free, up
    to the maximum asked for (a blank one: the minimum times the planner's headroom); a chart's
    size is its footprint's. The startup is when the offer starts, from now (`latest`: the
    latest start looked at)."""
    asked = task.asked
    cores_low, memory_low = task.cores.min, task.memory.min
    cores_high, memory_high, duration_high = task.cores.max, task.memory.max, task.duration.max
    if footprint is not None:  # the chart decides its size
        cores_low = cores_high = footprint.total.cpu
        memory_low = memory_high = footprint.total.memory
    elif task.sessions > 1:  # a workshop's sessions are each of the minimum (offer.cpu is their sum)
        cores_high, memory_high = cores_low, memory_low
    elif offer is not None:
        cores_high, memory_high = offer.cpu, offer.memory
    if offer is not None:
        duration_high = offer.duration

    def form(*names: str) -> str:  # the form of the first of these fields the question gave
        return tasks.duration_form(*(asked.get(n) for n in names))

    def first(*names: str) -> Any:
        return next((asked[n] for n in names if asked.get(n) is not None), None)

    if offer is not None:
        start = max(0, offer.start - now)
        startup_low, startup_high = start, start if asked.get("maxstartup") is None else task.startup.max
    else:
        startup_low, startup_high = task.startup.min, latest - now
    durations = ("minduration", "maxduration", "minstartup", "maxstartup")
    return {
        "mincores": tasks.cores_number(cores_low), "maxcores": tasks.offered_cores(cores_high, cores_low),
        "minmemory": tasks.memory_text(memory_low, first("minmemory", "maxmemory")),
        "maxmemory": tasks.memory_text(memory_high, first("maxmemory", "minmemory"), memory_low),
        "minduration": tasks.duration_text(task.duration.min, form(*durations)),
        "maxduration": tasks.offered_duration(duration_high, task.duration.min, form("maxduration", *durations),
                                              first("maxduration", "minduration")),
        "minstartup": tasks.duration_text(startup_low, form("minstartup", "maxstartup", *durations)),
        "maxstartup": tasks.duration_text(startup_high, form("maxstartup", "minstartup", *durations)),
    }


async def _may_ask(request: web.Request):
    return await caller(request, required=not service(request).settings.anonymous_accepts)


def _refused(task: tasks.NoteTask) -> str | None:
    """Why the task is not run here, as an answer (NO with the reason); images only: a chart
    that may not be fetched is refused outright (_may_fetch)."""
    if task.tasktype == ivoa.NOTE_CONTAINER or task.notebook and task.taskinfo.get("image"):
        return allowlist.image_allowed(str(task.taskinfo["image"]))
    return None


def _chart_field(task: tasks.NoteTask) -> str:
    return "taskinfo.repository" if task.taskinfo.get("repository") else "taskinfo.chart"


def _may_fetch(svc, who, task: tasks.NoteTask, ref: charts.ChartRef, values: dict[str, Any], namespace: str) -> None:
    """Before any network access: a chart from a source not on the chart allowlist is refused
    (403, naming the field), and an anonymous caller may have a chart rendered only when it
    comes from an allowlisted repository; else only an answer the render cache holds is given."""
    why = allowlist.chart_allowed(ref.chart, ref.repository)
    if why:
        raise Problem(403, why, _chart_field(task))
    if who is None and not allowlist.chart_listed(ref.chart, ref.repository) \
            and not svc.charts.cached(ref, values, namespace):
        raise Problem(403, f"chart {ref} is not from an allowlisted chart repository: anonymous callers are answered "
                           "about such charts only from the planner's render cache (send a bearer token)",
                      _chart_field(task))


def _chart_ref(task: tasks.NoteTask) -> charts.ChartRef:
    info = task.taskinfo
    return charts.ChartRef(str(info["chart"]), str(info["repository"]) if info.get("repository") else None,
                           str(info["version"]) if info.get("version") else None)


def _values(task: tasks.NoteTask) -> dict[str, Any]:
    values = task.taskinfo.get("values") or {}
    if not isinstance(values, dict):
        raise Problem(400, "must be an object (the chart's values)", "taskinfo.values")
    return values


def _word(yes: bool) -> dict[str, str]:
    # The note spells it "reponseword"; both are sent so that every client reads it.
    word = "YES" if yes else "NO"
    return {"responseword": word, "reponseword": word}


def _reasons(texts: list[str]) -> dict[str, Any]:
    info = {"reasons": [{"httpcode": 200, "text": t} for t in texts]}
    return {"reponseinfo": info, "responseinfo": info}
