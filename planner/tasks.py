"""What IVOA clients send, read into ExecutionPlan specs: the one translation of the
ExecutionPlanner note's task (POST /accepts), the ExecutionBroker's OfferSetRequest and UWS
job parameters into the plan the operator runs, and the note's answer written back in the
forms the question used (cores as numbers, memory in its unit, durations in their form). Pure
functions; every error names the field as the client spelt it.

Units, as documented in the README: memory is a Kubernetes quantity ("8Gi" = 8 x 2^30 bytes,
"8G" = 8 x 10^9 bytes, as Kubernetes reads it); the broker's bare numbers are GiB. Durations are
ISO 8601 (PT2H) or the note's short forms (10m, 9h, 60s). A task's sizes are read with
api/units.py's task_cores, task_memory and task_duration, as the CLI and the CRD read them:
memory under 1Mi (say "512m", which is 0.512 bytes) and durations under 1 s are refused with the
field named.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ValidationError

from execplanner.api.ivoa import (EB_DOCKER, EB_NOTEBOOK, EB_SIMPLE_COMPUTE, NOTE_CONTAINER, NOTE_HELM, NOTE_TYPES,
                                  NOTEBOOK_NAMES, AcceptsRequest)
from execplanner.api.ivoa import OfferSetRequest as OfferSetBody
from execplanner.api.plan import CONTAINER_TYPES, HELM_TYPES, MAX_SESSIONS, NOTEBOOK_TYPES, PlanSpec
from execplanner.api.units import task_cores, task_duration, task_memory, task_memory_gib
from execplanner.engine import (PodRequest, Range, Request, Resources, UnitError, format_cpu, format_duration,
                                format_memory, parse_duration, parse_interval)
from execplanner.engine.specs import check_units, session_pod

MAX_CORES = 100_000   # beyond these a request is a typo, not a question
MAX_MEMORY = 2 ** 50  # 1 PiB
MAX_DURATION = 366 * 86400
MAX_OFFERS = PlanSpec.model_fields["offers"].metadata[-1].le  # what the CRD holds (spec.offers)


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
    union member it tried, such as `str`, or the `type` that chose it); a missing field is named too."""
    parts, node = [], body
    for part in error["loc"]:
        if isinstance(node, dict) and part not in node and part == node.get("type"):
            continue  # the discriminated union's member, chosen by this object's own type
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
    asked: dict[str, Any] = field(default_factory=dict)  # `resources` as sent: what was left blank, in which form
    sessions: int = 1  # a notebook's sessions (a workshop): identical pods, placed all or none

    @property
    def notebook(self) -> bool:
        return self.tasktype in NOTEBOOK_NAMES

    @property
    def batch(self) -> bool:
        return self.notebook and self.taskinfo.get("mode") == "batch"


def read_note_task(body: Any, default_duration: int) -> NoteTask:
    body = _obj(body, "body")
    tasktype = _str(body.get("tasktype"), "tasktype", required=True)
    if tasktype not in NOTE_TYPES:
        raise BadRequest("tasktype", f"{tasktype!r} is not run here (known: {', '.join(sorted(NOTE_TYPES))})")
    taskinfo = _obj(body.get("taskinfo"), "taskinfo")
    sessions = 1
    if tasktype == NOTE_CONTAINER:
        _str(taskinfo.get("image"), "taskinfo.image", required=True)
    elif tasktype in NOTEBOOK_NAMES:
        sessions = _notebook_fields(taskinfo, "taskinfo")
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
    return NoteTask(tasktype, taskinfo, cores, memory, duration, startup, dict(r), sessions)


_LOCATION = re.compile(r"^https?://\S+$")


def _notebook_fields(info: dict[str, Any], where: str, sessions: Any = None, sessions_field: str = "") -> int:
    """A notebook's location (an http(s) URL), mode and sessions, checked as the CRD checks
    them (field names as the client spelt them); the number of sessions."""
    at = f"{where}." if where else ""
    location = _str(info.get("location"), f"{at}location", required=True)
    if len(location) > 2048 or not _LOCATION.match(location):  # type: ignore[arg-type]
        raise BadRequest(f"{at}location", f"must be the notebook's http or https URL, not {location!r}")
    mode = info.get("mode")
    if mode not in (None, "interactive", "batch"):
        raise BadRequest(f"{at}mode", f"{mode!r} is not a mode (interactive or batch)")
    sessions_field = sessions_field or f"{at}sessions"
    sessions = info.get("sessions") if sessions is None else sessions
    if sessions is None:
        return 1
    if isinstance(sessions, str) and sessions.strip().isdigit():
        sessions = int(sessions.strip())
    if isinstance(sessions, bool) or not isinstance(sessions, int) or not 1 <= sessions <= MAX_SESSIONS:
        raise BadRequest(sessions_field, f"must be a whole number from 1 to {MAX_SESSIONS}")
    if sessions > 1 and mode == "batch":
        raise BadRequest(sessions_field, "sessions above 1 only apply to interactive notebooks (mode batch runs "
                                         "the notebook once)")
    return sessions


def session_pods(sessions: int, cores: int, memory: int) -> tuple[PodRequest, ...]:
    """A workshop's identical pods, as engine/specs.py plans them: each session of the minimum."""
    each = Resources(cores, memory, 0, 0, 1)
    return tuple(PodRequest(session_pod(i), each) for i in range(1, sessions + 1))


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


def note_request(task: NoteTask, now: int, headroom: float = 1.0, duration_headroom: float = 1.0,
                 horizon: int | None = None) -> Request:
    """The engine's question for a note task. A maximum left blank is the minimum times its
    headroom (the engine offers as much as is free, up to that); a blank maxstartup is the
    planner's horizon (answers look no further)."""
    cores, memory, duration = task.cores, task.memory, task.duration
    if task.asked.get("maxcores") is None:
        cores = _headroom(cores.min, headroom)
    if task.asked.get("maxmemory") is None:
        memory = _headroom(memory.min, headroom)
    if task.asked.get("maxduration") is None:
        duration = _headroom(duration.min, duration_headroom)
    latest = task.startup.max
    if task.asked.get("maxstartup") is None and horizon is not None:
        latest = max(task.startup.min, horizon)
    windows = ((now + task.startup.min, now + latest),)
    if task.sessions > 1:  # a workshop: its sessions' fixed pod set, each of the minimum
        return Request(duration=duration, windows=windows,
                       pods=session_pods(task.sessions, task.cores.min, task.memory.min))
    return Request(cpu=cores, memory=memory, duration=duration, windows=windows,
                   name=session_pod(1) if task.notebook and not task.batch else "main")


def _headroom(low: int, factor: float) -> Range:
    return Range(low, max(low, int(Fraction(str(factor)) * low)))


# -- the note's answer, in the forms the question used ---------------------------------------------
# The note's answers carry cores as numbers (mincores: 8), memory as text with a unit (8G) and
# durations in the short form the question used (10m, 9h30m): each offered value is written in
# the form its own field (else its pair's, else any duration of the question) was asked in.

_MEMORY_UNIT = re.compile(r"^\s*[0-9.]+\s*(Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E)\s*$")
_MEMORY_UNITS = {"k": 10 ** 3, "K": 10 ** 3, "M": 10 ** 6, "G": 10 ** 9, "T": 10 ** 12, "P": 10 ** 15, "E": 10 ** 18,
                 "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60}


def cores_number(millicores: int) -> int | float:
    """Cores as the note writes them: a number (8; 0.5 for 500m)."""
    return millicores // 1000 if millicores % 1000 == 0 else millicores / 1000


def offered_cores(millicores: int, low: int) -> int | float:
    """The most cores offered, as a number: whole cores when the minimum is whole (never below it)."""
    if low % 1000 == 0 and millicores >= low:
        millicores -= millicores % 1000
    return cores_number(max(low, millicores))


def memory_text(nbytes: int, asked: Any, low: int | None = None) -> str:
    """Memory in the unit the question used ("8G" asked: "10G"), rounded down to it but never
    below `low`; Kubernetes' shortest exact form otherwise ("8Gi", "512Mi")."""
    m = _MEMORY_UNIT.match(asked) if isinstance(asked, str) else None
    if m:
        unit = _MEMORY_UNITS[m.group(1)]
        whole = nbytes // unit
        if nbytes % unit == 0 or low is not None and whole * unit >= low:
            return f"{whole}{m.group(1)}"
    return format_memory(nbytes)


def duration_form(*asked: Any) -> str:
    """The form of the first duration given: "number" (seconds as a number), "seconds" (seconds
    as text), "iso" (PT10M), or the short form up to its largest unit, "short-d", "short-h",
    "short-m" or "short-s" (10m: minutes, so 20m and never 1h; 9h: 9h30m). None given: "short-h",
    the note's own form."""
    for value in asked:
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            return "number"
        text = str(value).strip().lower()
        if text[:1] == "p":
            return "iso"
        if text.replace(".", "", 1).isdigit():
            return "seconds"
        return "short-" + next((u for u in "dhms" if u in text), "h")
    return "short-h"


def duration_text(seconds: int, form: str) -> int | str:
    """`seconds` in `form` (see duration_form): 34200 -> "9h30m" (short-h), "570m" (short-m),
    "PT9H30M", 34200 or "34200"."""
    if form == "number":
        return seconds
    if form == "seconds":
        return str(seconds)
    if form == "iso":
        return format_duration(seconds)
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    top = next((i for i, (u, _) in enumerate(units) if form == f"short-{u}"), 1)
    parts, left = [], seconds
    for unit, size in units[top:]:
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return "".join(parts) or f"0{units[top][0]}"


def offered_duration(seconds: int, low: int, form: str, asked: Any) -> int | str:
    """The longest run offered, rounded down to whole minutes unless the question counted in
    seconds (never below the minimum), in `form`."""
    precise = form in ("number", "seconds") or (isinstance(asked, str) and asked.strip().upper().endswith("S"))
    if not precise and seconds > low:
        seconds = max(low, seconds - seconds % 60)
    return duration_text(seconds, form)


# -- the ExecutionBroker: POST /offersets --------------------------------------------------------

@dataclass(frozen=True)
class OfferSetRequest:
    name: str
    spec: dict[str, Any]  # the ExecutionPlan's spec
    executable: dict[str, Any]  # as the client sent it (echoed in sessions)
    requested: dict[str, Any]   # what the client asked for, as sent (echoed in sessions): see _echo


def read_offerset(body: Any, default_count: int) -> OfferSetRequest:
    """An OfferSetRequest -> a Manual plan's spec. A container (the draft's docker-container
    type) or, beside the draft, a Helm chart (uri://kubernetes-helm or helm-chart, with the
    chart's source as the ExecutionPlan names it: chart, repository, version, values), which
    becomes a helm-chart plan sized by its rendered pods (compute resources, when given, cap
    them as spec.resources does)."""
    body = _obj(body, "body")
    name = _str(body.get("name"), "name") or "offerset"
    exe = _obj(body.get("executable"), "executable")
    if not exe:
        raise BadRequest("executable", "is required")
    etype = _str(exe.get("type"), "executable.type", required=True)
    if etype not in CONTAINER_TYPES and etype not in HELM_TYPES and etype not in NOTEBOOK_TYPES:
        raise BadRequest("executable.type", f"{etype!r} is not run here (known: {EB_DOCKER}, {NOTE_HELM}, "
                                            f"helm-chart, {EB_NOTEBOOK})")
    chart, notebook = etype in HELM_TYPES, etype in NOTEBOOK_TYPES
    if chart:
        for key in ("chart", "repository", "version"):
            _chart_reference(exe.get(key), f"executable.{key}", required=key == "chart")
    sessions = 1
    if notebook:
        sessions = _notebook_fields(exe, "executable", body.get("sessions"), "sessions")
    elif body.get("sessions") not in (None, 1):
        raise BadRequest("sessions", "sessions above 1 only apply to interactive notebooks (executable.type "
                                     f"{EB_NOTEBOOK})")
    _shaped(OfferSetBody, body)
    executable = _chart(exe) if chart else _notebook(exe) if notebook else _container(exe)

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
    asked_cores = _requested(c, "cores", task_cores, MAX_CORES * 1000)
    asked_memory = _requested(c, "memory", _memory, MAX_MEMORY)
    cores = asked_cores or Range(1000, 1000)
    memory = asked_memory or Range(2 ** 30, 2 ** 30)
    minimal = any(_obj(_obj(c.get(k), f"resources.compute[0].{k}").get("requested"),
                       f"resources.compute[0].{k}.requested").get("minimal") for k in ("cores", "memory"))
    if minimal:
        cores, memory = Range(cores.min, cores.min), Range(memory.min, memory.min)

    requested_schedule = _obj(_obj(body.get("schedule"), "schedule").get("requested"), "schedule.requested")
    duration = requested_schedule.get("duration", "PT1H")
    if isinstance(duration, dict):
        d = _range(duration.get("min"), duration.get("max"), task_duration, "", MAX_DURATION,
                   "schedule.requested.duration.min", "schedule.requested.duration.max")
    else:
        d = _range(duration, None, task_duration, "", MAX_DURATION, "schedule.requested.duration",
                   "schedule.requested.duration")
    starts = requested_schedule.get("start") or []
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
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_OFFERS:
        raise BadRequest("offers", f"must be a whole number from 1 to {MAX_OFFERS}")

    spec: dict[str, Any] = {
        "executable": executable,
        "schedule": {"duration": {"min": format_duration(d.min), "max": format_duration(d.max)}, "start": starts},
        "acceptPolicy": "Manual",
        "offers": count,
    }
    if sessions > 1:
        spec["sessions"] = sessions
    if not chart:
        spec["resources"] = {"cores": _minmax_cpu(cores), "memory": _minmax_memory(memory)}
    elif asked_cores or asked_memory:  # caps on the chart's total; one not asked for caps nothing
        spec["resources"] = {"cores": _minmax_cpu(asked_cores or Range(MAX_CORES * 1000, MAX_CORES * 1000)),
                             "memory": _minmax_memory(asked_memory or Range(MAX_MEMORY, MAX_MEMORY))}
    _validate(spec)
    return OfferSetRequest(name, spec, exe, _echo(c, requested_schedule))


def _chart_reference(value: Any, field: str, required: bool) -> str | None:
    """A chart, repository or version, as text helm cannot read as an option."""
    text = _str(value, field, required)
    if text is not None and (text.strip() != text or text.startswith("-") or any(ch in text for ch in "\r\n\0")):
        raise BadRequest(field, f"{text!r} is not a chart reference")
    return text


def _chart(exe: dict[str, Any]) -> dict[str, Any]:
    """The broker's chart executable as the ExecutionPlan's helm-chart executable."""
    executable: dict[str, Any] = {"type": "helm-chart", "chart": str(exe["chart"])}
    for key in ("repository", "version"):
        if exe.get(key):
            executable[key] = str(exe[key])
    values = exe.get("values")
    if values:
        executable["values"] = values
    return executable


def _notebook(exe: dict[str, Any]) -> dict[str, Any]:
    """The broker's notebook executable (the draft's `location`; beside it `mode`, `image` and
    `environment`) as the ExecutionPlan's."""
    executable: dict[str, Any] = {"type": str(exe["type"]), "location": str(exe["location"])}
    if exe.get("mode"):
        executable["mode"] = str(exe["mode"])
    if exe.get("image") is not None:
        executable["image"] = _image(exe["image"])
    env = _obj(exe.get("environment"), "executable.environment")
    if env:
        executable["env"] = [{"name": str(k), "value": str(v)} for k, v in env.items()]
    return executable


def _container(exe: dict[str, Any]) -> dict[str, Any]:
    """The broker's docker-container executable as the ExecutionPlan's."""
    if exe.get("privileged") not in (None, False):
        raise BadRequest("executable.privileged", "privileged containers are refused")
    executable: dict[str, Any] = {"type": EB_DOCKER, "image": _image(exe.get("image"))}
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
    return executable


def _echo(compute: dict[str, Any], schedule: dict[str, Any]) -> dict[str, Any]:
    """What the client asked for, exactly as sent, for the sessions to echo: the compute
    resource's `requested` blocks (cores, memory) and the schedule's `requested` block."""
    out: dict[str, Any] = {}
    for what in ("cores", "memory"):
        entry = compute.get(what)
        if isinstance(entry, dict) and isinstance(entry.get("requested"), dict):
            out[what] = entry["requested"]
    return {"compute": out, "schedule": schedule}


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


# The draft's memory units (utils.yaml's ComputeUnitsEnum); GiB when none is given.
COMPUTE_UNITS = {"kB": 10 ** 3, "kiB": 2 ** 10, "MB": 10 ** 6, "MiB": 2 ** 20, "GB": 10 ** 9, "GiB": 2 ** 30,
                 "TB": 10 ** 12, "TiB": 2 ** 40, "PB": 10 ** 15, "PiB": 2 ** 50, "EB": 10 ** 18, "EiB": 2 ** 60,
                 "ZB": 10 ** 21, "ZiB": 2 ** 70, "YB": 10 ** 24, "YiB": 2 ** 80}


def _memory(value: Any, field: str, units: str | None = None) -> int:
    """The broker's bare numbers are in `units` (the draft's default: GiB); strings are
    Kubernetes quantities."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and units not in (None, "GiB"):
        amount = Fraction(str(value)) * COMPUTE_UNITS[units]  # type: ignore[index]
        return task_memory(int(amount) if amount.denominator == 1 else f"{float(amount):f}", field)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return task_memory_gib(value, field)
    return task_memory(value, field)


def _requested(compute: dict[str, Any], what: str, parse, limit: int) -> Range | None:
    field = f"resources.compute[0].{what}"
    entry = _obj(compute.get(what), field)
    req = _obj(entry.get("requested"), f"{field}.requested") if entry else {}
    units = req.get("units")
    if units is not None:
        if what != "memory" or units not in COMPUTE_UNITS:
            raise BadRequest(f"{field}.requested.units", f"{units!r} is not a unit of {what} here"
                             + (f" (one of {', '.join(COMPUTE_UNITS)})" if what == "memory" else ""))
        return _range(req.get("min"), req.get("max"), lambda v, f: parse(v, f, units), field, limit,
                      f"{field}.requested.min", f"{field}.requested.max")
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

UWS_PARAMETERS = ("image", "cmd", "cores", "memory", "duration", "location", "mode", "sessions", "runId", "PHASE")


def uws_spec(params: dict[str, list[str]], default_duration: int) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """UWS job parameters -> (plan spec without suspend/destruction, the parameters as kept)."""
    def one(name: str) -> str | None:
        values = params.get(name) or []
        if len(values) > 1:
            raise BadRequest(name, "may be given once")
        return values[0] if values else None

    image, location, mode, sessions = one("image"), one("location"), one("mode"), one("sessions")
    if location is None and (mode is not None or sessions is not None):
        raise BadRequest("location", "is required with mode and sessions (the notebook's URL)")
    if not image and location is None:
        raise BadRequest("image", "is required (the container image to run), or location (a notebook's URL)")
    cores = _checked(task_cores, one("cores") or "1", "cores", MAX_CORES * 1000)
    memory = _checked(task_memory, one("memory") or "1Gi", "memory", MAX_MEMORY)
    duration = _uws_duration(one("duration"), "duration", default_duration)
    count = 1
    if location is not None:  # a notebook: interactive sessions (the default) or a batch run
        if params.get("cmd"):
            raise BadRequest("cmd", "does not apply to a notebook (location)")
        count = _notebook_fields({"location": location, "mode": mode}, "", sessions, "sessions")
        executable: dict[str, Any] = {"type": "jupyter-notebook", "location": location}
        if mode:
            executable["mode"] = mode
        if image:
            executable["image"] = image
    else:
        executable = {"type": "docker-container", "image": image}
    if params.get("cmd"):
        executable["command"] = list(params["cmd"])
    spec = {
        "executable": executable,
        "resources": {"cores": {"min": format_cpu(cores)}, "memory": {"min": format_memory(memory)}},
        "schedule": {"duration": {"min": format_duration(duration)}},
        "acceptPolicy": "First",
    }
    if count > 1:
        spec["sessions"] = count
    _validate(spec)
    kept = {k: list(v) for k, v in params.items()
            if k in ("image", "cmd", "cores", "memory", "duration", "location", "mode", "sessions")}
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
