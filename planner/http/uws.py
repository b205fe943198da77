"""UWS 1.1 at /uws/jobs: container runs as IVOA jobs (the `uri://docker-uws` service).

A job is an ExecutionPlan (acceptPolicy First, suspended until PHASE=RUN) and, once its
booking starts, the TaskRun the operator makes for it (same name); the job's phase is read
from both. The destruction time is the plan's spec.destruction (the operator deletes it).
pyvo (`pyvo.io.uws`, `pyvo.dal.tap.AsyncTAPJob`) reads and drives these documents.
"""
from __future__ import annotations

import json
import secrets
import time
from typing import Any
from xml.etree import ElementTree as ET

from aiohttp import web
from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.api.notebooks import NOTEBOOK_MEDIA_TYPE
from execplanner.api.plan import PlanSpec

from execplanner.cluster import allowlist
from .. import tasks
from ..cache import OWNER_ANNOTATION, UWS_LABEL
from execplanner.engine import UnitError, format_duration, format_instant, parse_duration, parse_instant
from execplanner.engine.specs import plan_request
from ..identity import Identity
from .common import Problem, base_url, caller, costly_caller, not_found, service, with_site_defaults
from .kubeerrors import api_problem
from .broker import notebook_fields
from .logs import notebook_result, task_log

routes = web.RouteTableDef()
UWS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK = "http://www.w3.org/1999/xlink"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
ET.register_namespace("uws", UWS)
ET.register_namespace("xlink", XLINK)
ET.register_namespace("xsi", XSI)
PHASES = ("PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "UNKNOWN", "HELD", "SUSPENDED",
          "ARCHIVED")
ACTIVE = ("PENDING", "QUEUED", "EXECUTING")
PLAN_PHASE = {"Pending": "QUEUED", "Booked": "QUEUED", "Starting": "QUEUED", "Running": "EXECUTING",
              "Completed": "COMPLETED", "Failed": "ERROR", "Rejected": "ERROR", "Expired": "ERROR",
              "Cancelled": "ABORTED"}
PARAMS_ANNOTATION = "execplanner.io/uws-parameters"
RUNID_ANNOTATION = "execplanner.io/uws-runid"


def job_phase(plan: dict[str, Any], run: dict[str, Any] | None = None) -> str:
    """The UWS phase of a job's plan and its TaskRun (pure). A run stopped at the end of its
    booking, its executionduration, is ABORTED, as UWS 1.1 says ("when the execution duration
    has been exceeded the service should automatically abort the job"): the TaskRun says so
    (ABORTED, TimeLimitExceeded) while the plan is Failed. The operator writes the run's end
    before the plan's, so a Failed plan whose run still shows EXECUTING is EXECUTING a moment
    longer rather than ERROR."""
    spec, status = plan.get("spec") or {}, plan.get("status") or {}
    phase = status.get("phase") or "Pending"
    if phase == "Pending" and spec.get("suspend"):
        return "PENDING"
    if phase == "Failed" and run:
        run_phase = (run.get("status") or {}).get("phase")
        if run_phase == "ABORTED":
            return "ABORTED"
        if run_phase in ("QUEUED", "EXECUTING"):
            return "EXECUTING"
    return PLAN_PHASE.get(phase, "UNKNOWN")


# -- XML ----------------------------------------------------------------------------------------

def _el(parent: ET.Element, tag: str, text: Any = None, nil: bool = False, **attrs: str) -> ET.Element:
    e = ET.SubElement(parent, f"{{{UWS}}}{tag}", attrs)
    if text is not None:
        e.text = str(text)
    elif nil:
        e.set(f"{{{XSI}}}nil", "true")
    return e


def _xml(root: ET.Element, status: int = 200) -> web.Response:
    body = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return web.Response(text='<?xml version="1.0" encoding="UTF-8"?>\n' + body, status=status,
                        content_type="application/xml")


def _root(tag: str) -> ET.Element:
    root = ET.Element(f"{{{UWS}}}{tag}", {"version": "1.1"})
    return root


class Job:
    """A job as the caller sees it: its plan and TaskRun, and its document's fields."""

    def __init__(self, request: web.Request, plan: dict[str, Any]) -> None:
        svc = service(request)
        self.plan, self.svc = plan, svc
        meta = plan["metadata"]
        self.id, self.namespace = meta["name"], meta["namespace"]
        self.run = svc.cache.runs.get((self.namespace, self.id)) or {}
        self.phase = job_phase(plan, self.run)
        self.href = f"{base_url(request)}/uws/jobs/{self.id}"

    @property
    def status(self) -> dict[str, Any]:
        return self.plan.get("status") or {}

    def parameters(self) -> dict[str, list[str]]:
        raw = (self.plan["metadata"].get("annotations") or {}).get(PARAMS_ANNOTATION)
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return {}

    def quote(self) -> str | None:
        booking = self.status.get("booking")
        if booking:
            return booking.get("start")
        if self.phase not in ("PENDING", "QUEUED"):
            return None
        return _estimate(self.svc, self.plan)

    def duration(self) -> int:
        try:
            return parse_duration(self.plan["spec"]["schedule"]["duration"]["min"], "duration")
        except (KeyError, UnitError):
            return 0

    def error(self) -> str | None:
        if self.phase in ("ERROR", "ABORTED"):
            run_status = self.run.get("status") or {}
            return run_status.get("message") or self.status.get("message") or self.phase.lower()
        return None

    def has_log(self) -> bool:
        return bool(((self.run.get("status") or {}).get("log") or {}).get("pod"))

    def notebook(self) -> dict[str, Any]:
        """A notebook job's endpoints (running) and its kept result (batch, completed)."""
        return notebook_fields(self.plan, booked=self.phase in ("QUEUED", "EXECUTING", "COMPLETED")
                               and bool(self.status.get("booking")), result_url=f"{self.href}/results/notebook")

    def results(self, parent: ET.Element) -> None:
        """The job's results: its log, and a batch notebook's executed notebook once kept."""
        if self.has_log():
            _el(parent, "result", id="log", **{f"{{{XLINK}}}href": f"{self.href}/results/log",
                                              f"{{{XLINK}}}type": "simple", "mime-type": "text/plain"})
        result = self.notebook().get("result")
        if result:
            _el(parent, "result", id="notebook", **{f"{{{XLINK}}}href": result, f"{{{XLINK}}}type": "simple",
                                                    "mime-type": NOTEBOOK_MEDIA_TYPE})

    def document(self) -> ET.Element:
        meta, run_status = self.plan["metadata"], self.run.get("status") or {}
        root = _root("job")
        _el(root, "jobId", self.id)
        _el(root, "runId", (meta.get("annotations") or {}).get(RUNID_ANNOTATION))
        _el(root, "ownerId", (meta.get("annotations") or {}).get(OWNER_ANNOTATION), nil=True)
        _el(root, "phase", self.phase)
        _el(root, "quote", self.quote(), nil=True)
        _el(root, "creationTime", meta.get("creationTimestamp"))
        _el(root, "startTime", run_status.get("startTime"), nil=True)
        _el(root, "endTime", run_status.get("endTime"), nil=True)
        _el(root, "executionDuration", self.duration())
        _el(root, "destruction", self.plan["spec"].get("destruction"), nil=True)
        params = _el(root, "parameters")
        for name, values in self.parameters().items():
            for value in values:
                _el(params, "parameter", value, id=name)
        self.results(_el(root, "results"))
        error = self.error()
        if error:
            summary = _el(root, "errorSummary", type="fatal" if self.phase == "ERROR" else "transient",
                          hasDetail="true")
            _el(summary, "message", error)
        info = _el(root, "jobInfo")
        ET.SubElement(info, "planPhase").text = self.status.get("phase") or "Pending"
        if self.status.get("booking"):
            b = self.status["booking"]
            ET.SubElement(info, "booking", {"start": b["start"], "end": b["end"], "cores": str(b["cores"]),
                                            "memory": str(b["memory"])})
        notebook = self.notebook()
        if notebook:  # a notebook's sessions: where each is reached, and its token's Secret (never the token)
            ET.SubElement(info, "sessions").text = str(notebook["sessions"])
            if notebook.get("endpoint"):
                ET.SubElement(info, "endpoint").text = notebook["endpoint"]
            for e in notebook.get("endpoints") or []:
                ET.SubElement(info, "endpoint", {k: str(v) for k, v in e.items() if k != "url"}).text = e.get("url")
        return root


def _estimate(svc, plan: dict[str, Any]) -> str | None:
    """When a job not yet booked would start, were it run now (nothing is booked)."""
    try:
        request = plan_request(PlanSpec.model_validate(plan["spec"]))
    except (ValueError, UnitError):
        return None
    now = int(time.time())
    result = svc.cache.calendar.offers(request, now, count=1, namespace=plan["metadata"]["namespace"])
    return format_instant(result.offers[0].start) if result.offers else None


# -- finding -------------------------------------------------------------------------------------

def _jobs(request: web.Request, who: Identity) -> list[dict[str, Any]]:
    svc = service(request)
    return [p for (ns, _), p in list(svc.cache.plans.items())
            if ns == who.namespace and (p["metadata"].get("labels") or {}).get(UWS_LABEL) == "true"
            and not _deleted(p)]


def _deleted(plan: dict[str, Any] | None) -> bool:
    """A deleted job is gone for its owner at once, while the operator still stops and releases it."""
    return plan is None or bool(plan["metadata"].get("deletionTimestamp"))


async def _job(request: web.Request, who: Identity) -> Job:
    svc = service(request)
    job_id = request.match_info["job"]
    plan = svc.cache.plans.get((who.namespace, job_id))
    if plan is None and job_id.startswith("job-") and len(job_id) <= 63:
        plan = await svc.kube.get_plan(who.namespace, job_id)  # made a moment ago through another replica
    if plan is None or (plan["metadata"].get("labels") or {}).get(UWS_LABEL) != "true" or _deleted(plan):
        raise not_found(f"job {job_id}")
    return Job(request, plan)


async def _params(request: web.Request) -> dict[str, list[str]]:
    """UWS parameters from the query and a form body; names are case-insensitive for the
    reserved ones (PHASE, ACTION, ...), as UWS says."""
    params: dict[str, list[str]] = {}
    try:
        form = await request.post() if request.method == "POST" else {}
    except ValueError as e:  # a multipart body without a boundary, bad encoding ...
        raise Problem(400, f"the form body cannot be read: {e}", "body") from None
    for source in (request.query, form):
        for name, value in source.items():
            if not isinstance(value, str):
                raise Problem(400, f"parameter {name} must be a value, not a file upload", name)
            key = name.upper() if name.upper() in ("PHASE", "ACTION", "EXECUTIONDURATION", "DESTRUCTION",
                                                    "RUNID", "WAIT", "AFTER", "LAST") else name
            params.setdefault("runId" if key == "RUNID" else key, []).append(value)
    return params


def _see(location: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location)


# -- the job list ---------------------------------------------------------------------------------

@routes.get("/uws/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    who = await caller(request)
    params = await _params(request)
    phases = params.get("PHASE") or []
    for p in phases:
        if p not in PHASES:
            raise Problem(400, f"PHASE {p!r} is not a UWS phase ({', '.join(PHASES)})", "PHASE")
    after = None
    if params.get("AFTER"):
        try:
            after = parse_instant(params["AFTER"][0], "AFTER")
        except UnitError as e:
            raise Problem(400, e.message, "AFTER") from None
    last = None
    if params.get("LAST"):
        text = params["LAST"][0]
        if not text.isdigit() or int(text) < 1:
            raise Problem(400, "LAST must be a positive whole number", "LAST")
        last = int(text)
    jobs = [Job(request, p) for p in _jobs(request, who)]
    jobs = [j for j in jobs if (j.phase in phases if phases else j.phase != "ARCHIVED")]
    if after is not None:
        jobs = [j for j in jobs if parse_instant(j.plan["metadata"]["creationTimestamp"], "creationTime") > after]
    jobs.sort(key=lambda j: (j.plan["metadata"].get("creationTimestamp") or "", j.id))
    if last is not None:
        jobs = list(reversed(jobs))[:last]  # the most recent first
    root = _root("jobs")
    for j in jobs:
        meta = j.plan["metadata"]
        ref = _el(root, "jobref", id=j.id, **{f"{{{XLINK}}}href": j.href, f"{{{XLINK}}}type": "simple"})
        _el(ref, "phase", j.phase)
        run_id = (meta.get("annotations") or {}).get(RUNID_ANNOTATION)
        if run_id:
            _el(ref, "runId", run_id)
        _el(ref, "ownerId", (meta.get("annotations") or {}).get(OWNER_ANNOTATION))
        _el(ref, "creationTime", meta.get("creationTimestamp"))
    return _xml(root)


@routes.post("/uws/jobs")
async def create_job(request: web.Request) -> web.Response:
    who = await costly_caller(request, "uws")
    assert who is not None
    svc = service(request)
    params = await _params(request)
    unknown = sorted(set(params) - set(tasks.UWS_PARAMETERS))
    if unknown:
        raise Problem(400, f"parameter {unknown[0]} is not known (known: {', '.join(tasks.UWS_PARAMETERS)})",
                      unknown[0])
    phase = (params.get("PHASE") or [None])[0]
    if phase not in (None, "RUN"):
        raise Problem(400, "PHASE at creation may only be RUN", "PHASE")
    spec, kept = tasks.uws_spec(params, svc.settings.uws_default_duration_seconds)
    image = spec["executable"].get("image")
    refused = allowlist.image_allowed(image) if image else None
    if refused:
        raise Problem(403, refused, "image")
    job_id = f"job-{secrets.token_hex(5)}"
    spec["suspend"] = phase != "RUN"
    spec["destruction"] = format_instant(int(time.time()) + svc.settings.uws_destruction_days * 86400)
    annotations = {OWNER_ANNOTATION: who.user, PARAMS_ANNOTATION: json.dumps(kept)[:16384]}
    if params.get("runId"):
        annotations[RUNID_ANNOTATION] = params["runId"][0][:253]
    body = {"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan",
            "metadata": {"name": job_id, "labels": {UWS_LABEL: "true"}, "annotations": annotations},
            "spec": with_site_defaults(svc, spec)}
    try:
        if svc.settings.create_namespaces:
            await svc.kube.ensure_namespace(who.namespace, who.user)
        await svc.kube.create_plan(who.namespace, body)
    except ApiException as e:
        raise api_problem(e, "the job") from None
    await svc.cache.wait_plan((who.namespace, job_id), lambda p: p is not None, 5.0)
    svc.metrics.answers.labels("uws", "created").inc()
    raise _see(f"{base_url(request)}/uws/jobs/{job_id}")


# -- one job ----------------------------------------------------------------------------------------

@routes.get("/uws/jobs/{job}")
async def get_job(request: web.Request) -> web.Response:
    who = await caller(request)
    job = await _job(request, who)
    params = await _params(request)
    if params.get("WAIT"):
        job = await _wait(request, who, job, params)
    return _xml(job.document())


async def _wait(request: web.Request, who: Identity, job: Job, params: dict[str, list[str]]) -> Job:
    """Block while the job is PENDING, QUEUED or EXECUTING (and, with PHASE, in that phase)
    until its phase changes or WAIT seconds pass (-1: the service's longest wait)."""
    svc = service(request)
    text = params["WAIT"][0]
    try:
        wait = int(text)
    except ValueError:
        raise Problem(400, "WAIT must be a whole number of seconds (-1: as long as allowed)", "WAIT") from None
    if wait < -1:
        raise Problem(400, "WAIT must be -1 or more", "WAIT")
    limit = svc.settings.max_wait_seconds
    wait = limit if wait == -1 else min(wait, limit)
    expected = (params.get("PHASE") or [None])[0]
    if job.phase not in ACTIVE or (expected and expected != job.phase) or wait == 0:
        return job
    start_phase = job.phase
    key = (job.namespace, job.id)
    plan = await svc.cache.wait_plan(key, lambda p: p is None or job_phase(p, svc.cache.runs.get(key)) != start_phase,
                                     wait)
    if plan is None:
        raise not_found(f"job {job.id}")
    return Job(request, plan)


@routes.delete("/uws/jobs/{job}")
async def delete_job(request: web.Request) -> web.Response:
    who = await caller(request)
    job = await _job(request, who)
    await _delete(request, job)
    raise _see(f"{base_url(request)}/uws/jobs")


async def _delete(request: web.Request, job: Job) -> None:
    svc = service(request)
    try:
        await svc.kube.delete_plan(job.namespace, job.id)
    except ApiException as e:
        raise api_problem(e, f"job {job.id}") from None
    await svc.cache.wait_plan((job.namespace, job.id), _deleted, 5.0)
    svc.metrics.answers.labels("uws", "deleted").inc()


@routes.post("/uws/jobs/{job}")
async def post_job(request: web.Request) -> web.Response:
    who = await caller(request)
    job = await _job(request, who)
    params = await _params(request)
    if (params.get("ACTION") or [None])[0] == "DELETE":
        await _delete(request, job)
        raise _see(f"{base_url(request)}/uws/jobs")
    given = [name for name in SETTERS if params.get(name)]
    if not given:
        raise Problem(400, "expected ACTION=DELETE, PHASE, EXECUTIONDURATION or DESTRUCTION", "ACTION")
    for name in given:
        await SETTERS[name][0](request, job, params[name][0])
    raise _see(job.href)


@routes.get("/uws/jobs/{job}/phase")
async def get_phase(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    return web.Response(text=job.phase, content_type="text/plain")


async def _set_phase(request: web.Request, job: Job, value: str) -> None:
    svc = service(request)
    if value == "RUN":
        if job.phase != "PENDING":
            return  # already on its way: RUN again changes nothing
        patch, done = {"suspend": False}, (lambda p: p is None or not (p.get("spec") or {}).get("suspend"))
    elif value == "ABORT":
        if job.phase not in ACTIVE:
            return
        patch, done = {"cancel": True}, (lambda p: p is None or (p.get("spec") or {}).get("cancel"))
    else:
        raise Problem(400, f"PHASE {value!r} cannot be requested (RUN or ABORT)", "PHASE")
    await _patch(svc, job, patch, done)


@routes.get("/uws/jobs/{job}/executionduration")
async def get_duration(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    return web.Response(text=str(job.duration()), content_type="text/plain")


async def _set_duration(request: web.Request, job: Job, value: str) -> None:
    svc = service(request)
    if job.phase != "PENDING":
        raise Problem(409, f"the execution duration can only change while the job is PENDING (it is {job.phase})",
                      "EXECUTIONDURATION")
    try:
        seconds = tasks.uws_duration(value, "EXECUTIONDURATION", svc.settings.uws_default_duration_seconds)
    except tasks.BadRequest as e:
        raise Problem(400, str(e), "EXECUTIONDURATION") from None
    await _patch(svc, job, {"schedule": {"duration": {"min": format_duration(seconds), "max": None}}},
                 lambda p: (p.get("spec") or {}).get("schedule", {}).get("duration", {}).get("min")
                 == format_duration(seconds))


@routes.get("/uws/jobs/{job}/destruction")
async def get_destruction(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    return web.Response(text=job.plan["spec"].get("destruction") or "", content_type="text/plain")


async def _set_destruction(request: web.Request, job: Job, value: str) -> None:
    try:
        when = format_instant(parse_instant(value, "DESTRUCTION"))
    except UnitError as e:
        raise Problem(400, e.message, "DESTRUCTION") from None
    await _patch(service(request), job, {"destruction": when},
                 lambda p: (p.get("spec") or {}).get("destruction") == when)


async def _patch(svc, job: Job, spec: dict[str, Any], done) -> None:
    try:
        await svc.kube.patch_spec(job.namespace, job.id, spec)
    except ApiException as e:
        raise api_problem(e, f"job {job.id}") from None
    # Answer once this replica's cache shows it, so the client's next GET sees the change.
    await svc.cache.wait_plan((job.namespace, job.id), lambda p: p is None or done(p), 5.0)


# The job's settable properties: POST <job>/<property> or POST <job> with the parameter.
SETTERS = {"PHASE": (_set_phase, "PHASE=RUN or PHASE=ABORT"),
           "EXECUTIONDURATION": (_set_duration, "EXECUTIONDURATION=<seconds>"),
           "DESTRUCTION": (_set_destruction, "DESTRUCTION=<ISO 8601 time>")}


@routes.post("/uws/jobs/{job}/{property:phase|executionduration|destruction}")
async def post_property(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    params = await _params(request)
    name = request.match_info["property"].upper()
    setter, expected = SETTERS[name]
    if not params.get(name):
        raise Problem(400, f"{expected} is expected", name)
    await setter(request, job, params[name][0])
    raise _see(job.href)


@routes.get("/uws/jobs/{job}/error")
async def get_error(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    error = job.error()
    if error is None:
        raise Problem(404, f"job {job.id} has no error (it is {job.phase})")
    return web.Response(text=error, content_type="text/plain")


@routes.get("/uws/jobs/{job}/quote")
async def get_quote(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    return web.Response(text=job.quote() or "", content_type="text/plain")


@routes.get("/uws/jobs/{job}/owner")
async def get_owner(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    return web.Response(text=(job.plan["metadata"].get("annotations") or {}).get(OWNER_ANNOTATION, ""),
                        content_type="text/plain")


@routes.get("/uws/jobs/{job}/parameters")
async def get_parameters(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    root = _root("parameters")
    for name, values in job.parameters().items():
        for value in values:
            _el(root, "parameter", value, id=name)
    return _xml(root)


@routes.get("/uws/jobs/{job}/results")
async def get_results(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    root = _root("results")
    job.results(root)
    return _xml(root)


@routes.get("/uws/jobs/{job}/results/log")
async def get_log(request: web.Request) -> web.Response:
    job = await _job(request, await caller(request))
    return await task_log(request, job.plan)


@routes.get("/uws/jobs/{job}/results/notebook")
async def get_notebook(request: web.Request) -> web.Response:
    """A batch notebook job's executed notebook (application/x-ipynb+json), to its owner."""
    job = await _job(request, await caller(request))
    return await notebook_result(request, job.plan)
