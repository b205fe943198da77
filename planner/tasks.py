"""What IVOA clients send, read into ExecutionPlan specs: the one translation of the
ExecutionPlanner note's task (POST /accepts), the ExecutionBroker's OfferSetRequest and UWS
job parameters into the plan the operator runs. Pure functions; every error names the field
as the client spelt it.

Units, as documented in the README: memory is a Kubernetes quantity ("8Gi" = 8 x 2^30 bytes,
"8G" = 8 x 10^9 bytes, as Kubernetes reads it); the broker's bare numbers are GiB. Durations are
ISO 8601 (PT2H) or the note's short forms (10m, 9h, 60s). A task's sizes are read with
api/units.py's task_cores, task_memory and task_duration, as the CLI and the CRD read them:
memory under 1Mi (say "512m", which is 0.512 bytes) and durations under 1 s are refused with the
field named.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from execplanner.api.ivoa import EB_DOCKER, EB_SIMPLE_COMPUTE, NOTE_CONTAINER, NOTE_TYPES, AcceptsRequest
from execplanner.api.ivoa import OfferSetRequest as OfferSetBody
from execplanner.api.plan import CONTAINER_TYPES, HELM_TYPES, PlanSpec
from execplanner.api.units import task_cores, task_duration, task_memory, task_memory_gib
from execplanner.engine import (Range, Request, UnitError, format_cpu, format_duration, format_memory, parse_duration,
                                parse_interval)
from execplanner.engine.specs import check_units

MAX_CORES = 100_000   # beyond these a request is a typo, not a question
MAX_MEMORY = 2 ** 50  # 1 PiB
MAX_DURATION = 366 * 86400


class BadRequest(ValueError):
    """Input the service cannot read: `field` is where, in the client's own names."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _shaped(model: type[BaseModel], body: dict[str, Any]) -> None:
    """The body has the shape the API's wire model (api/ivoa.py, also the OpenAPI document's
    schema) gives it; the first difference is refused, named as the client spelt it. What a
    shape cannot say (units, sizes, which combinations run here) is read below."""
    try:
        model.model_validate(body)
    except ValidationError as e:
        error = e.errors()[0]
        field = _where(body, error)
        if error["type"] == "extra_forbidden":
            raise BadRequest(field, "is not a field this service knows") from None
        raise BadRequest(field or "body", error["msg"][0].lower() + error["msg"][1:]) from None


def _where(body: Any, error: dict[str, Any]) -> str:
    """An error's location as a field name, as far as the client's body goes (pydantic adds the
    union member it tried, such as `str`); a missing field is named too."""
    parts, node = [], body
    for part in error["loc"]:
        if isinstance(node, dict) and part in node or isinstance(node, list) and isinstance(part, int):
            parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
            node = node[part] if not isinstance(node, list) or part < len(node) else None
        else:
            if error["type"] == "missing" and isinstance(node, dict):
                parts.append(f".{part}")
            break
    return "".join(parts).lstrip(".")


def _obj(value: Any, field: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(field, "must be an object")
    return value


def _str(value: Any, field: str, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise BadRequest(field, "is required")
        return None
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise BadRequest(field, "must be a string")
    return str(value)


def _checked(parse, value: Any, field: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadRequest(field, "must be a number or a string")
    try:
        amount = parse(value, field)
    except UnitError as e:
        raise BadRequest(field, e.message) from None
    if amount <= 0:
        raise BadRequest(field, "must be greater than zero")
    if amount > limit:
        raise BadRequest(field, "is larger than any request this service can answer")
    return amount


def _range(low: Any, high: Any, parse, field: str, limit: int, min_name: str, max_name: str) -> Range | None:
    if low is None and high is None:
        return None
    lo = _checked(parse, low if low is not None else high, min_name if low is not None else max_name, limit)
    hi = _checked(parse, high, max_name, limit) if high is not None else lo
    if hi < lo:
        raise BadRequest(max_name, f"must not be less than {min_name}")
    return Range(lo, hi)


# -- the ExecutionPlanner note: POST /accepts --------------------------------------------------

@dataclass(frozen=True)
class NoteTask:
    tasktype: str
    taskinfo: dict[str, Any]
    cores: Range
    memory: Range
    duration: Range
    startup: Range  # seconds from now: how soon it must start


def read_note_task(body: Any, default_duration: int) -> NoteTask:
    body = _obj(body, "body")
    tasktype = _str(body.get("tasktype"), "tasktype", required=True)
    if tasktype not in NOTE_TYPES:
        raise BadRequest("tasktype", f"{tasktype!r} is not run here (known: {', '.join(sorted(NOTE_TYPES))})")
    taskinfo = _obj(body.get("taskinfo"), "taskinfo")
    if tasktype == NOTE_CONTAINER:
        _str(taskinfo.get("image"), "taskinfo.image", required=True)
    else:
        _str(taskinfo.get("chart"), "taskinfo.chart", required=True)
        for key in ("chart", "repository", "version"):
            text = _str(taskinfo.get(key), f"taskinfo.{key}")
            if text is not None and (text.strip() != text or text.startswith("-") or any(c in text for c in "\r\n\0")):
                raise BadRequest(f"taskinfo.{key}", f"{text!r} is not a chart reference")
    r = _obj(body.get("resources"), "resources")
    unknown = set(r) - {"mincores", "maxcores", "minmemory", "maxmemory", "minduration", "maxduration",
                        "minstartup", "maxstartup"}
    if unknown:
        raise BadRequest(f"resources.{sorted(unknown)[0]}", "is not a resource this service knows")
    _shaped(AcceptsRequest, body)
    cores = _range(r.get("mincores"), r.get("maxcores"), task_cores, "resources", MAX_CORES * 1000,
                   "resources.mincores", "resources.maxcores") or Range(1000, 1000)
    memory = _range(r.get("minmemory"), r.get("maxmemory"), task_memory, "resources", MAX_MEMORY,
                    "resources.minmemory", "resources.maxmemory") or Range(2 ** 30, 2 ** 30)
    duration = _range(r.get("minduration"), r.get("maxduration"), task_duration, "resources", MAX_DURATION,
                      "resources.minduration", "resources.maxduration") or Range(default_duration, default_duration)
    startup = _startup(r.get("minstartup"), r.get("maxstartup"))
    return NoteTask(tasktype, taskinfo, cores, memory, duration, startup)


def _startup(low: Any, high: Any) -> Range:
    def parse(value: Any, field: str) -> int:  # zero is a fine startup ("at once")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise BadRequest(field, "must be a duration")
        try:
            seconds = 0 if str(value).strip() == "0" else parse_duration(value, field)
        except UnitError as e:
            raise BadRequest(field, e.message) from None
        if not 0 <= seconds <= MAX_DURATION:
            raise BadRequest(field, "must be between 0 and a year")
        return seconds
    lo = parse(low, "resources.minstartup") if low is not None else 0
    hi = parse(high, "resources.maxstartup") if high is not None else MAX_DURATION
    if hi < lo:
        raise BadRequest("resources.maxstartup", "must not be less than resources.minstartup")
    return Range(lo, hi)


def note_request(task: NoteTask, now: int) -> Request:
    return Request(cpu=task.cores, memory=task.memory, duration=task.duration,
                   windows=((now + task.startup.min, now + task.startup.max),))


# -- the ExecutionBroker: POST /offersets --------------------------------------------------------

@dataclass(frozen=True)
class OfferSetRequest:
    name: str
    spec: dict[str, Any]  # the ExecutionPlan's spec
    executable: dict[str, Any]  # as the client sent it (echoed in sessions)
    requested: dict[str, Any]   # the compute entry's requested cores/memory, the schedule


def read_offerset(body: Any, default_count: int) -> OfferSetRequest:
    body = _obj(body, "body")
    name = _str(body.get("name"), "name") or "offerset"
    exe = _obj(body.get("executable"), "executable")
    if not exe:
        raise BadRequest("executable", "is required")
    etype = _str(exe.get("type"), "executable.type", required=True)
    if etype not in CONTAINER_TYPES:
        if etype in HELM_TYPES:
            raise BadRequest("executable.type", "helm charts are booked through POST /offersets with type "
                             "'uri://kubernetes-helm' only once chart support is configured")
        raise BadRequest("executable.type", f"{etype!r} is not run here (known: {EB_DOCKER})")
    _shaped(OfferSetBody, body)
    if exe.get("privileged") not in (None, False):
        raise BadRequest("executable.privileged", "privileged containers are refused")
    image = _image(exe.get("image"))
    executable: dict[str, Any] = {"type": EB_DOCKER, "image": image}
    entrypoint = exe.get("entrypoint")
    if entrypoint is not None:
        if isinstance(entrypoint, str):
            entrypoint = [entrypoint]
        if not isinstance(entrypoint, list) or not all(isinstance(a, str) for a in entrypoint):
            raise BadRequest("executable.entrypoint", "must be a string or a list of strings")
        executable["command"] = entrypoint
    env = _obj(exe.get("environment"), "executable.environment")
    if env:
        executable["env"] = [{"name": str(k), "value": str(v)} for k, v in env.items()]

    resources = _obj(body.get("resources"), "resources")
    compute = resources.get("compute") or [{}]
    if not isinstance(compute, list) or not all(isinstance(c, dict) for c in compute):
        raise BadRequest("resources.compute", "must be a list of objects")
    if len(compute) > 1:
        raise BadRequest("resources.compute", "one compute resource per offer set is supported")
    c = compute[0]
    ctype = c.get("type")
    if ctype not in (None, EB_SIMPLE_COMPUTE):
        raise BadRequest("resources.compute[0].type", f"{ctype!r} is not known (known: {EB_SIMPLE_COMPUTE})")
    cores = _requested(c, "cores", task_cores, MAX_CORES * 1000) or Range(1000, 1000)
    memory = _requested(c, "memory", _memory, MAX_MEMORY) or Range(2 ** 30, 2 ** 30)
    minimal = any(_obj(_obj(c.get(k), f"resources.compute[0].{k}").get("requested"),
                       f"resources.compute[0].{k}.requested").get("minimal") for k in ("cores", "memory"))
    if minimal:
        cores, memory = Range(cores.min, cores.min), Range(memory.min, memory.min)

    schedule = _obj(_obj(body.get("schedule"), "schedule").get("requested"), "schedule.requested")
    duration = schedule.get("duration", "PT1H")
    if isinstance(duration, dict):
        d = _range(duration.get("min"), duration.get("max"), task_duration, "", MAX_DURATION,
                   "schedule.requested.duration.min", "schedule.requested.duration.max")
    else:
        d = _range(duration, None, task_duration, "", MAX_DURATION, "schedule.requested.duration",
                   "schedule.requested.duration")
    starts = schedule.get("start") or []
    if isinstance(starts, str):
        starts = [starts]
    if not isinstance(starts, list) or not all(isinstance(s, str) for s in starts):
        raise BadRequest("schedule.requested.start", "must be a list of ISO 8601 intervals")
    for i, window in enumerate(starts):
        try:
            parse_interval(window, f"schedule.requested.start[{i}]")
        except UnitError as e:
            raise BadRequest(f"schedule.requested.start[{i}]", e.message) from None
    count = body.get("offers", default_count)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 20:
        raise BadRequest("offers", "must be a whole number from 1 to 20")

    spec = {
        "executable": executable,
        "resources": {"cores": _minmax_cpu(cores), "memory": _minmax_memory(memory)},
        "schedule": {"duration": {"min": format_duration(d.min), "max": format_duration(d.max)}, "start": starts},
        "acceptPolicy": "Manual",
        "offers": count,
    }
    _validate(spec)
    requested = {"cores": cores, "memory": memory, "duration": d, "start": starts}
    return OfferSetRequest(name, spec, exe, requested)


def _image(value: Any) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, dict):
        if value.get("ident"):
            return _image(value["ident"])
        name = _str(value.get("name"), "executable.image.name", required=True)
        if value.get("digest"):
            return f"{name}@{value['digest']}"
        return f"{name}:{value['tag']}" if value.get("tag") else name
    raise BadRequest("executable.image", "is required (an image reference, or an object with name/tag/digest)")


def _memory(value: Any, field: str) -> int:
    """The broker's bare numbers are GiB; strings are Kubernetes quantities."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return task_memory_gib(value, field)
    return task_memory(value, field)


def _requested(compute: dict[str, Any], what: str, parse, limit: int) -> Range | None:
    field = f"resources.compute[0].{what}"
    entry = _obj(compute.get(what), field)
    req = _obj(entry.get("requested"), f"{field}.requested") if entry else {}
    return _range(req.get("min"), req.get("max"), parse, field, limit, f"{field}.requested.min",
                  f"{field}.requested.max")


def _minmax_cpu(r: Range) -> dict[str, str]:
    return {"min": format_cpu(r.min), "max": format_cpu(r.max)}


def _minmax_memory(r: Range) -> dict[str, str]:
    return {"min": format_memory(r.min), "max": format_memory(r.max)}


def _validate(spec: dict[str, Any]) -> PlanSpec:
    """The operator's own reading of the spec, so nothing the service accepts is refused later."""
    try:
        model = PlanSpec.model_validate(spec)
        check_units(model)
    except UnitError as e:
        raise BadRequest(e.field, e.message) from None
    except ValueError as e:  # pydantic
        raise BadRequest("body", str(e).splitlines()[0]) from None
    return model


# -- UWS: POST /uws/jobs ----------------------------------------------------------------------------

UWS_PARAMETERS = ("image", "cmd", "cores", "memory", "duration", "runId", "PHASE")


def uws_spec(params: dict[str, list[str]], default_duration: int) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """UWS job parameters -> (plan spec without suspend/destruction, the parameters as kept)."""
    def one(name: str) -> str | None:
        values = params.get(name) or []
        if len(values) > 1:
            raise BadRequest(name, "may be given once")
        return values[0] if values else None

    image = one("image")
    if not image:
        raise BadRequest("image", "is required (the container image to run)")
    cores = _checked(task_cores, one("cores") or "1", "cores", MAX_CORES * 1000)
    memory = _checked(task_memory, one("memory") or "1Gi", "memory", MAX_MEMORY)
    duration = _uws_duration(one("duration"), "duration", default_duration)
    executable: dict[str, Any] = {"type": "docker-container", "image": image}
    if params.get("cmd"):
        executable["command"] = list(params["cmd"])
    spec = {
        "executable": executable,
        "resources": {"cores": {"min": format_cpu(cores)}, "memory": {"min": format_memory(memory)}},
        "schedule": {"duration": {"min": format_duration(duration)}},
        "acceptPolicy": "First",
    }
    _validate(spec)
    kept = {k: list(v) for k, v in params.items() if k in ("image", "cmd", "cores", "memory", "duration")}
    return spec, kept


def _uws_duration(value: str | None, field: str, default: int) -> int:
    """UWS gives seconds (0 = unlimited, which a booking cannot be: the default then)."""
    if value is None or value.strip() in ("", "0"):
        return default
    text = value.strip()
    if text.isdigit():
        seconds = int(text)
        if seconds > MAX_DURATION:
            raise BadRequest(field, "is longer than any booking this service makes")
        return seconds
    return _checked(task_duration, text, field, MAX_DURATION)


def uws_duration(value: str | None, field: str, default: int) -> int:
    return _uws_duration(value, field, default)
