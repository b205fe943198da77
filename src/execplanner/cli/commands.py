"""The commands: each takes the parsed arguments and a :class:`Context`, returns an exit code."""
from __future__ import annotations

import re
import sys
import time
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, TextIO

import yaml

from execplanner.cli import calendar as calendar_view
from execplanner.cli.client import CliError, Client
from execplanner.cli.render import Progress, dump, table, terminal_width
from execplanner.api.units import (UnitError, format_duration, format_instant, parse_duration, task_cores,
                                   task_duration, task_memory, task_memory_gib)
from execplanner.cli.units import (duration_seconds, parse_interval, parse_time, short_duration, show_number,
                                   show_range, show_time, utc_now)

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
DOCKER_EXECUTABLE = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"
HELM_EXECUTABLE = "uri://kubernetes-helm"
NOTEBOOK_EXECUTABLE = "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0.yaml"
SIMPLE_COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-1.0.yaml"
STATE_UPDATE = "uri:enum-value-update"
UWS_ACTIVE = ("PENDING", "QUEUED", "EXECUTING", "HELD")
UWS_WAIT = 5  # seconds a blocking GET ?WAIT= may hold
POLL_INTERVAL = 0.5  # seconds between looks at an offer set still PENDING
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)


class UsageError(CliError):
    def __init__(self, message: str):
        super().__init__(message, 2)


@dataclass
class Context:
    client: Client
    output: str
    stdout: TextIO
    stderr: TextIO
    sleep: Callable[[float], None] = time.sleep

    def print(self, text: str = "") -> None:
        self.stdout.write(text + "\n")

    def dump(self, data: Any) -> None:
        self.print(dump(data, self.output))

    @property
    def width(self) -> int:
        """Columns to draw in: the terminal's, else $COLUMNS, else 100."""
        return terminal_width(self.stdout)

    @property
    def table_width(self) -> int | None:
        """Tables are clipped to fit a terminal only; in a pipe or a file they stay whole."""
        try:
            return terminal_width(self.stdout) if self.stdout.isatty() else None
        except (AttributeError, ValueError):
            return None

    def progress(self) -> Progress:
        return Progress(self.stderr)


def q(segment: str) -> str:
    """One path segment, quoted."""
    return urllib.parse.quote(str(segment), safe="")


# -- argument helpers ---------------------------------------------------------------------
def split_range(text: str, what: str) -> tuple[str, str | None]:
    """``1-4`` → ('1', '4'); ``2`` → ('2', None)."""
    parts = [p.strip() for p in str(text).split("-")]
    if len(parts) == 1 and parts[0]:
        return parts[0], None
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise UsageError(f"{what}: expected VALUE or MIN-MAX, got {text!r}")


# Quantities and durations are read with execplanner.api.units, as the planner reads them: a
# text the CLI accepts means the same size on the server, and a size no task can have (memory
# under 1Mi, such as 512m = 0.512 bytes; a duration under 1 s) is refused here, naming the option.

def read(parse: Callable[[Any, str], Any], text: str, what: str) -> Any:
    """`parse(text, what)` (an api.units parser); its refusal as a usage error naming the option."""
    try:
        return parse(text, what)
    except UnitError as exc:
        raise UsageError(f"{what}: {exc.message}") from None


def plain(text: str) -> int | float | str:
    """A bare number as a number (JSON), anything else (``500m``, ``8Gi``) as written."""
    try:
        value = float(text)
    except ValueError:
        return text.strip()
    return int(value) if value == int(value) else value


def cores_option(text: str, what: str = "--cores") -> int | float | str:
    """Cores as the server reads them (``2``, ``1.5``, ``500m``), at least 1m; sent as given."""
    read(task_cores, text, what)
    return plain(text)


def memory_option(text: str, what: str = "--memory") -> str:
    """Memory as a Kubernetes quantity (``8Gi``, ``8G``, ``512Mi``; a bare number is bytes), at
    least 1Mi; sent as given."""
    read(task_memory, text, what)
    return text.strip()


def gib(text: str, what: str = "--memory") -> int | float | str:
    """Memory as the ExecutionBroker writes it: a bare number is GiB (sent as a number), a
    suffixed one a Kubernetes quantity (``8Gi``, ``8G`` = 8x10^9 bytes, ``512Mi``; sent as given);
    at least 1Mi."""
    read(task_memory_gib, text, what)
    return plain(text)


def seconds_option(text: str, what: str = "--duration") -> int:
    """A task's duration (``10m``, ``1h30m``, ``PT2H``, seconds) in whole seconds, at least 1 s."""
    return read(task_duration, text, what)


def duration_option(text: str, what: str) -> str:
    """A task's duration, checked, sent as given."""
    seconds_option(text, what)
    return text.strip()


def offset_option(text: str, what: str) -> str:
    """A duration that may be zero (how soon a task must start), checked, sent as given."""
    read(parse_duration, text, what)
    return text.strip()


def read_body(path: str | None, stdin: TextIO | None = None) -> dict:
    """A request body from a YAML or JSON file (``-`` = stdin)."""
    if not path:
        return {}
    try:
        text = (stdin or sys.stdin).read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        body = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is neither YAML nor JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(body, dict):
        raise UsageError(f"{path}: expected a mapping at the top, got {type(body).__name__}")
    return body


def interval(text: str, now: datetime) -> str:
    """``START/END`` or ``START/DURATION``; START may be ``now`` or ``+30m``; durations short or ISO."""
    if "/" not in text:
        raise UsageError(f"--start: expected START/END or START/DURATION (e.g. now/2h or "
                         f"2026-11-24T15:00:00Z/PT2H), got {text!r}")
    left, right = (s.strip() for s in text.split("/", 1))
    if left.lower() == "now":
        start = now
    elif left.startswith("+"):
        try:
            start = now + timedelta(seconds=parse_duration(left[1:], "--start"))
        except UnitError:
            raise UsageError(f"--start: {left!r} is not +DURATION") from None
    else:
        start = parse_time(left)
        if start is None:
            raise UsageError(f"--start: {left!r} is not an RFC 3339 time")
    start_text = format_instant(int(start.timestamp()))
    end = parse_time(right)
    if end is not None:
        if end <= start:
            raise UsageError(f"--start: {text!r} ends before it starts")
        return f"{start_text}/{format_instant(int(end.timestamp()))}"
    try:
        return f"{start_text}/{format_duration(parse_duration(right, '--start'))}"
    except UnitError:
        raise UsageError(f"--start: {right!r} is neither an end time nor a duration") from None


def environment(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UsageError(f"--env: expected NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


# -- ask ------------------------------------------------------------------------------------
def _notebook_checks(args) -> None:
    if not args.notebook and (args.mode or args.sessions):
        raise UsageError("--mode and --sessions go with --notebook URL")
    if args.notebook and args.chart:
        raise UsageError("give --notebook or --chart, not both")
    if args.mode == "batch" and (args.sessions or 1) > 1:
        raise UsageError("--sessions above 1 only apply to interactive notebooks (a batch notebook runs once)")


def cmd_ask(args, ctx: Context) -> int:
    body = read_body(args.file)
    _notebook_checks(args)
    if args.image and args.chart:
        raise UsageError("give --image or --chart, not both")
    if args.notebook:
        info = {"location": args.notebook}
        if args.image:
            info["image"] = args.image
        if args.mode:
            info["mode"] = args.mode
        if args.sessions:
            info["sessions"] = args.sessions
        body["tasktype"] = "uri://jupyter-notebook"
        body["taskinfo"] = info
    elif args.image:
        body["tasktype"] = "uri://docker-container"
        body["taskinfo"] = {"image": args.image}
    elif args.chart:
        info = {"chart": args.chart}
        if args.repository:
            info["repository"] = args.repository
        if args.chart_version:
            info["version"] = args.chart_version
        body["tasktype"] = "uri://kubernetes-helm"
        body["taskinfo"] = info
    elif not body.get("tasktype"):
        raise UsageError("say what to run: --image IMAGE, --chart CHART, --notebook URL or --file REQUEST.yaml")
    resources = dict(body.get("resources") or {})
    if args.cores:
        lo, hi = split_range(args.cores, "--cores")
        resources["mincores"], resources["maxcores"] = cores_option(lo), cores_option(hi or lo)
    if args.memory:
        lo, hi = split_range(args.memory, "--memory")
        resources["minmemory"], resources["maxmemory"] = memory_option(lo), memory_option(hi or lo)
    if args.duration:
        lo, hi = split_range(args.duration, "--duration")
        resources["minduration"] = duration_option(lo, "--duration")
        resources["maxduration"] = duration_option(hi or lo, "--duration")
    if args.startup:
        lo, hi = split_range(args.startup, "--startup")
        resources["minstartup"] = offset_option(lo, "--startup") if hi else "0s"
        resources["maxstartup"] = offset_option(hi or lo, "--startup")
    if resources:
        body["resources"] = resources

    answer = ctx.client.post_json("/accepts", body)
    if ctx.output != "table":
        ctx.dump(answer)
        return 0
    if not isinstance(answer, dict):
        raise CliError("unexpected answer from POST /accepts: not a JSON object")
    word = str(answer.get("responseword") or answer.get("reponseword") or "?").upper()
    service = answer.get("servicetype")
    endpoint = (answer.get("serviceinfo") or {}).get("endpoint")
    if word == "YES":
        where = f": {service}" + (f" at {endpoint}" if endpoint else "") if service else ""
        ctx.print(f"YES, the planner can run this{where}")
        if answer.get("sessions", 1) > 1:
            ctx.print(f"{answer['sessions']} sessions, each of the offered size, all placed for the whole run")
        start = parse_time(answer.get("start"))
        if start:
            ahead = (start - utc_now()).total_seconds()
            ctx.print(f"earliest start: {show_time(start)} UTC" + (f" (in {short_duration(ahead)})" if ahead > 0 else " (now)"))
    else:
        ctx.print(f"{word}, the planner cannot run this")
    offered = answer.get("resources") or {}
    rows = []
    for key in ("cores", "memory", "duration", "startup"):
        asked = show_range(resources.get(f"min{key}"), resources.get(f"max{key}"))
        given = show_range(offered.get(f"min{key}"), offered.get(f"max{key}"))
        if asked != "-" or given != "-":
            rows.append([key, asked, given])
    if rows and word == "YES":
        ctx.print()
        ctx.print(table(["RESOURCE", "ASKED", "OFFERED"], rows))
    reasons = ((answer.get("reponseinfo") or answer.get("responseinfo") or {}).get("reasons")) or []
    if reasons:
        ctx.print()
        ctx.print("reasons:" if word != "YES" else "notes:")
        for reason in reasons:
            if isinstance(reason, dict):
                code = reason.get("httpcode")
                ctx.print(f"  - {reason.get('text') or '?'}" + (f" ({code})" if code else ""))
            else:
                ctx.print(f"  - {reason}")
    return 0


# -- sessions -----------------------------------------------------------------------------
def _compute(session: dict) -> list[dict]:
    compute = ((session.get("resources") or {}).get("compute")) or []
    return [c for c in compute if isinstance(c, dict)]


def _offered(entry: dict, key: str) -> tuple[Any, Any]:
    got = _offered_block(entry, key)
    return got.get("min"), got.get("max")


def _offered_block(entry: dict, key: str) -> dict:
    part = entry.get(key) or {}
    return part.get("offered") or part.get("requested") or {}


# The ExecutionBroker's memory units (ComputeUnitsEnum) as Kubernetes writes them.
UNITS = {"GiB": "Gi", "MiB": "Mi", "kiB": "Ki", "TiB": "Ti", "PiB": "Pi", "EiB": "Ei",
         "GB": "G", "MB": "M", "kB": "k", "TB": "T", "PB": "P", "EB": "E"}


def _gib_text(value: Any, units: str | None = None) -> str:
    """Memory as the broker writes it: a number in `units` (GiB when none), or text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{show_number(value)}{UNITS.get(units or 'GiB', units or '')}"
    return str(value)


def session_cells(session: dict) -> dict[str, str]:
    compute = _compute(session)
    cores = ",".join(show_range(*_offered(c, "cores"), fmt=lambda v: show_number(v) if isinstance(v, (int, float)) else str(v))
                     for c in compute) or "-"
    memory = ",".join(show_range(*_offered(c, "memory"), fmt=lambda v, c=c: _gib_text(
        v, _offered_block(c, "memory").get("units"))) for c in compute) or "-"
    executing = ((session.get("schedule") or {}).get("executing")) or {}
    start, end = parse_interval(executing.get("start"))
    duration = executing.get("duration")
    if end is None and start is not None and duration:
        try:
            end = start + timedelta(seconds=duration_seconds(duration))
        except UnitError:
            pass
    length = short_duration((end - start).total_seconds()) if start and end else "-"
    expires = parse_time(session.get("expires"))
    state = str(session.get("state") or "?")
    if expires and state in ("OFFERED", "PROPOSED"):
        left = (expires - utc_now()).total_seconds()
        expiry = f"in {short_duration(left)}" if left > 0 else "expired"
    else:
        expiry = "-"
    return {"uuid": str(session.get("uuid") or "?"), "name": str(session.get("name") or "-"), "state": state,
            "cores": cores, "memory": memory, "start": show_time(start), "end": show_time(end),
            "duration": length, "expires": expiry, "created": show_time(session.get("created"))}


SESSION_HEADERS = ["SESSION", "STATE", "CORES", "MEMORY", "START (UTC)", "END (UTC)", "DURATION", "EXPIRES"]


def session_row(session: dict) -> list[str]:
    c = session_cells(session)
    return [c["uuid"], c["state"], c["cores"], c["memory"], c["start"], c["end"], c["duration"], c["expires"]]


def show_session(ctx: Context, session: Any, headline: str) -> None:
    if ctx.output != "table":
        ctx.dump(session)
        return
    if not isinstance(session, dict):
        raise CliError("unexpected answer from the planner: a session should be a JSON object")
    ctx.print(headline)
    ctx.print(table(SESSION_HEADERS, [session_row(session)]))
    for message in session.get("messages") or []:
        ctx.print(f"  {message_text(message)}")
    show_notebook(ctx, session)


def show_notebook(ctx: Context, doc: dict) -> None:
    """A notebook session's endpoints (URL, and the Secret holding its token) and result."""
    if (doc.get("sessions") or 1) > 1:
        ctx.print(f"{doc['sessions']} notebook sessions (the size above is theirs in all)")
    endpoints = [e for e in doc.get("endpoints") or [] if isinstance(e, dict)]
    if endpoints:
        ctx.print(table(["SESSION", "URL", "TOKEN SECRET", "KEY"],
                        [[str(e.get("session", "?")), str(e.get("url") or "-"), str(e.get("secret") or "-"),
                          str(e.get("key") or "-")] for e in endpoints], right=[0]))
        ctx.print("the tokens are in those Secrets of your namespace (kubectl get secret NAME -o "
                  "jsonpath='{.data.token}' | base64 -d)")
    if doc.get("result"):
        ctx.print(f"executed notebook: execplanner result {doc.get('uuid', '')}")


def update_session(ctx: Context, uuid: str, value: str) -> dict:
    body = {"update": {"type": STATE_UPDATE, "path": "state", "value": value}}
    return ctx.client.post_json(f"/sessions/{q(uuid)}", body)


def offerset_body(args, stdin: TextIO | None = None) -> dict:
    """The OfferSetRequest for the task the options describe: a container (--image) or a helm
    chart (--chart, with --repository, --chart-version, --values), its size and schedule."""
    body = read_body(args.file, stdin)
    executable = dict(body.get("executable") or {})
    _notebook_checks(args)
    if args.image and args.chart:
        raise UsageError("give --image or --chart, not both")
    if args.notebook:
        if args.command or args.repository or args.chart_version or args.values:
            raise UsageError("a notebook has no entrypoint, --repository, --chart-version or --values")
        executable = {"type": NOTEBOOK_EXECUTABLE, "location": args.notebook}
        if args.image:
            executable["image"] = args.image
        if args.mode:
            executable["mode"] = args.mode
        if args.env:
            executable["environment"] = environment(args.env)
        if args.sessions:
            body["sessions"] = args.sessions
    elif args.chart:
        if args.command or args.env:
            raise UsageError("a chart has no entrypoint or --env: give its --values instead")
        executable = {"type": HELM_EXECUTABLE, "chart": args.chart}
        if args.repository:
            executable["repository"] = args.repository
        if args.chart_version:
            executable["version"] = args.chart_version
        if args.values:
            executable["values"] = read_body(args.values, stdin)
    else:
        if args.repository or args.chart_version or args.values:
            raise UsageError("--repository, --chart-version and --values go with --chart")
        if args.image:
            executable = {"type": DOCKER_EXECUTABLE, **executable, "image": args.image}
        if not executable.get("image") and not executable.get("chart") and not args.file:
            raise UsageError("say what to run: --image IMAGE, --chart CHART (or --file REQUEST.yaml)")
        executable.setdefault("type", DOCKER_EXECUTABLE)
        if args.command:
            executable["entrypoint"] = list(args.command)
        if args.env:
            executable["environment"] = {**(executable.get("environment") or {}), **environment(args.env)}
    body["executable"] = executable
    if args.name:
        body["name"] = args.name
    body.setdefault("name", str(executable.get("location", "").rsplit("/", 1)[-1] or executable.get("image")
                                or executable.get("chart") or "execplanner-cli"))
    if args.cores or args.memory:
        resources = dict(body.get("resources") or {})
        compute = [dict(c) for c in resources.get("compute") or []] or [{"type": SIMPLE_COMPUTE}]
        entry = compute[0]
        entry.setdefault("type", SIMPLE_COMPUTE)
        if args.cores:
            lo, hi = split_range(args.cores, "--cores")
            entry["cores"] = {"requested": {"min": cores_option(lo), "max": cores_option(hi or lo)}}
        if args.memory:
            lo, hi = split_range(args.memory, "--memory")
            entry["memory"] = {"requested": {"min": gib(lo), "max": gib(hi or lo)}}
        resources["compute"] = compute
        body["resources"] = resources
    if args.duration or args.start:
        schedule = dict(body.get("schedule") or {})
        requested = dict(schedule.get("requested") or {})
        if args.duration:
            requested["duration"] = format_duration(seconds_option(args.duration))
        if args.start:
            now = utc_now()
            requested["start"] = [interval(s, now) for s in args.start]
        schedule["requested"] = requested
        body["schedule"] = schedule
    if args.count is not None:
        body["offers"] = args.count
    return body


def pending(offerset: Any) -> bool:
    """An offer set still being prepared: no result yet (older planners said PENDING)."""
    return isinstance(offerset, dict) and offerset.get("result") in (None, "PENDING")


def ask_offers(args, ctx: Context, body: dict) -> dict:
    """POST the offer set, follow the 303, and look again while it is being prepared."""
    deadline = time.monotonic() + args.wait
    with ctx.progress() as progress:
        # The planner holds the POST a few seconds for the operator's answer; then, if it
        # has none yet, the offer set has no result yet and we look again until it does.
        progress.update("asking the planner for offers")
        response = ctx.client.request("POST", "/offersets", json_body=body)
        offerset, where = response.json(), response.url
        while pending(offerset):
            if time.monotonic() >= deadline:
                raise CliError(f"the planner has not answered offer set {offerset.get('uuid') or where} "
                               f"within {args.wait:g}s (it is still being prepared, PENDING; raise --wait)")
            progress.update("waiting for the planner's offers (PENDING)")
            ctx.sleep(POLL_INTERVAL)
            offerset = ctx.client.get_json(where)
    if not isinstance(offerset, dict):
        raise CliError("unexpected answer from the planner: an offer set should be a JSON object")
    return offerset


def message_text(message: Any) -> str:
    """A message of the ExecutionBroker's (MessageItem: its text and level), or plain text."""
    if isinstance(message, dict):
        text = str(message.get("message") or message.get("template") or "")
        level = message.get("level")
        return f"{text} ({level})" if level and level not in ("INFO", "OTHER") else text
    return str(message)


def cmd_offers(args, ctx: Context) -> int:
    offerset = ask_offers(args, ctx, offerset_body(args))
    if ctx.output != "table":
        ctx.dump(offerset)
        return 0
    offers = [o for o in offerset.get("offers") or [] if isinstance(o, dict)]
    result = str(offerset.get("result") or "?")
    expires = parse_time(offerset.get("expires"))
    head = f"offer set {offerset.get('uuid', '?')} \"{offerset.get('name', '')}\": {result}, " \
           f"{len(offers)} offer{'s' if len(offers) != 1 else ''}"
    if expires and offers:
        head += f", valid until {show_time(expires)} UTC"
    ctx.print(head)
    if offers:
        rows = [[str(i)] + session_row(o) for i, o in enumerate(offers, 1)]
        ctx.print(table(["#"] + SESSION_HEADERS, rows, right=[0]))
        if (offers[0].get("sessions") or 1) > 1:
            ctx.print(f"each offer: {offers[0]['sessions']} notebook sessions (the size is theirs in all), "
                      "all placed for the whole run")
    messages = [message_text(m) for m in offerset.get("messages") or []]
    if messages:
        ctx.print("messages:" if offers else "why:")
        for m in messages:
            ctx.print(f"  {m}")
    if any(o.get("state") == "OFFERED" for o in offers):
        ctx.print(f"accept one with: execplanner accept {offers[0].get('uuid', '<session>')}")
    return 0


def cmd_accept(args, ctx: Context) -> int:
    """Accept SESSION; or, given a task (--image or --chart), ask for offers and accept the first."""
    if not (args.image or args.chart or args.notebook or args.file):
        if len(args.command) != 1:
            raise UsageError("say which offer: execplanner accept SESSION (or a task: --image IMAGE or "
                             "--chart CHART)")
        session = update_session(ctx, args.command[0], "ACCEPTED")
        state = session.get("state", "?") if isinstance(session, dict) else "?"
        show_session(ctx, session, f"session {args.command[0]}: {state}")
        return 0
    offerset = ask_offers(args, ctx, offerset_body(args))
    offers = [o for o in offerset.get("offers") or [] if isinstance(o, dict) and o.get("state") == "OFFERED"]
    if not offers:
        why = "; ".join(message_text(m) for m in offerset.get("messages") or []) or "no reason given"
        raise CliError(f"offer set {offerset.get('uuid', '?')}: {offerset.get('result') or '?'}, nothing to accept "
                       f"({why})")
    chosen = str(offers[0].get("uuid") or "")
    session = update_session(ctx, chosen, "ACCEPTED")
    state = session.get("state", "?") if isinstance(session, dict) else "?"
    show_session(ctx, session, f"offer set {offerset.get('uuid', '?')}: accepted the first of {len(offers)} "
                               f"offer{'s' if len(offers) != 1 else ''}, session {chosen}: {state}")
    return 0


def cmd_reject(args, ctx: Context) -> int:
    session = update_session(ctx, args.session, "REJECTED")
    state = session.get("state", "?") if isinstance(session, dict) else "?"
    show_session(ctx, session, f"session {args.session}: {state}")
    return 0


# -- UWS ----------------------------------------------------------------------------------
def _uws(tag: str) -> str:
    return f"{{{UWS_NS}}}{tag}"


def _child_text(el: ET.Element, tag: str) -> str | None:
    child = el.find(_uws(tag))
    if child is None or child.get(f"{{http://www.w3.org/2001/XMLSchema-instance}}nil") == "true":
        return None
    return (child.text or "").strip() or None


def parse_job_list(root: ET.Element) -> list[dict]:
    if root.tag != _uws("jobs"):
        raise CliError(f"unexpected answer from GET /uws/jobs: <{root.tag}> is not a UWS job list")
    jobs = []
    for ref in root.findall(_uws("jobref")):
        jobs.append({"id": ref.get("id"), "href": ref.get(f"{{{XLINK_NS}}}href"),
                     "phase": _child_text(ref, "phase"), "runId": _child_text(ref, "runId"),
                     "ownerId": _child_text(ref, "ownerId"), "creationTime": _child_text(ref, "creationTime")})
    return jobs


def parse_job(root: ET.Element) -> dict:
    if root.tag != _uws("job"):
        raise CliError(f"unexpected answer from the UWS service: <{root.tag}> is not a UWS job")
    job: dict[str, Any] = {}
    for tag in ("jobId", "runId", "ownerId", "phase", "quote", "creationTime", "startTime", "endTime",
                "executionDuration", "destruction"):
        job[tag] = _child_text(root, tag)
    params = root.find(_uws("parameters"))
    job["parameters"] = {} if params is None else {
        p.get("id"): (p.text or "").strip() for p in params.findall(_uws("parameter"))}
    results = root.find(_uws("results"))
    job["results"] = [] if results is None else [
        {"id": r.get("id"), "href": r.get(f"{{{XLINK_NS}}}href")} for r in results.findall(_uws("result"))]
    summary = root.find(_uws("errorSummary"))
    job["errorSummary"] = None if summary is None else {
        "type": summary.get("type"), "hasDetail": summary.get("hasDetail"),
        "message": _child_text(summary, "message")}
    return job


def job_url(job_id: str) -> str:
    return f"/uws/jobs/{q(job_id)}"


# -- runs, logs, cancel -------------------------------------------------------------------
def list_sessions(ctx: Context) -> list[dict]:
    doc = ctx.client.get_json("/sessions")
    sessions = doc.get("sessions") if isinstance(doc, dict) else doc
    if not isinstance(sessions, list):
        raise CliError("unexpected answer from GET /sessions: no list of sessions")
    return [s for s in sessions if isinstance(s, dict)]


def cmd_runs(args, ctx: Context) -> int:
    sessions = list_sessions(ctx)
    jobs = parse_job_list(ctx.client.get_xml("/uws/jobs"))
    if ctx.output != "table":
        ctx.dump({"sessions": sessions, "jobs": jobs})
        return 0
    rows = []
    for s in sessions:
        c = session_cells(s)
        rows.append((parse_time(s.get("created")), ["session", c["uuid"], c["name"], c["state"], c["created"],
                                                     c["start"], c["end"]]))
    for j in jobs:
        rows.append((parse_time(j.get("creationTime")), ["uws-job", j.get("id") or "?", j.get("runId") or "-",
                                                         j.get("phase") or "?", show_time(j.get("creationTime")),
                                                         "-", "-"]))
    if not rows:
        ctx.print("no sessions and no UWS jobs")
        return 0
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    rows.sort(key=lambda r: r[0] or oldest)
    ctx.print(table(["KIND", "ID", "NAME", "STATE", "CREATED (UTC)", "START (UTC)", "END (UTC)"],
                    [r for _, r in rows], width=ctx.table_width, shrink=[2]))
    return 0


def _kinds(args) -> list[str]:
    """Which kind of thing the id names, in the order to try: a session or a UWS job."""
    if args.session:
        return ["session"]
    if args.job:
        return ["job"]
    return ["session", "job"] if UUID_RE.match(args.id) else ["job", "session"]


def _either(args, attempts: dict[str, Callable[[], Any]]) -> tuple[str, Any]:
    """Run the attempt for each kind in turn until one is not a 404."""
    kinds = _kinds(args)
    misses = []
    for kind in kinds:
        try:
            return kind, attempts[kind]()
        except CliError as exc:
            if len(kinds) == 1 or not exc.message.startswith("404 "):
                raise
            misses.append(exc.message)
    raise CliError(f"no session and no UWS job {args.id!r} ({'; '.join(misses)})")


def cmd_logs(args, ctx: Context) -> int:
    kind, text = _either(args, {
        "session": lambda: ctx.client.get_text(f"/sessions/{q(args.id)}/log"),
        "job": lambda: ctx.client.get_text(f"{job_url(args.id)}/results/log"),
    })
    ctx.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    return 0


def cmd_result(args, ctx: Context) -> int:
    """A batch notebook's executed notebook, to standard output or --out."""
    kind, text = _either(args, {
        "session": lambda: ctx.client.get_text(f"/sessions/{q(args.id)}/result"),
        "job": lambda: ctx.client.get_text(f"{job_url(args.id)}/results/notebook"),
    })
    if args.out:
        try:
            Path(args.out).write_text(text)
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror or exc}", 2) from None
        ctx.stderr.write(f"the executed notebook ({len(text.encode())} bytes) is in {args.out}\n")
    else:
        ctx.stdout.write(text if not text or text.endswith("\n") else text + "\n")
    return 0


def cmd_cancel(args, ctx: Context) -> int:
    def session() -> dict:
        return update_session(ctx, args.id, "CANCELLED")

    def job() -> dict:
        return parse_job(ctx.client.request("POST", f"{job_url(args.id)}/phase", form={"PHASE": "ABORT"},
                                             accept="application/xml, text/xml").xml())

    kind, doc = _either(args, {"session": session, "job": job})
    if kind == "session":
        state = doc.get("state", "?") if isinstance(doc, dict) else "?"
        show_session(ctx, doc, f"session {args.id}: {state}")
    elif ctx.output != "table":
        ctx.dump(doc)
    else:
        ctx.print(f"UWS job {doc.get('jobId') or args.id}: {doc.get('phase') or '?'}")
    return 0


# -- calendar -----------------------------------------------------------------------------
def cmd_calendar(args, ctx: Context) -> int:
    doc = ctx.client.get_json("/calendar", params={"hours": show_number(args.hours)})
    if ctx.output != "table":
        ctx.dump(doc)
        return 0
    if not isinstance(doc, dict):
        raise CliError("unexpected answer from GET /calendar: not a JSON object")
    width = args.width or ctx.width
    encoding = (getattr(ctx.stdout, "encoding", None) or "").lower()
    unicode = not args.ascii and "utf" in encoding
    try:
        ctx.print(calendar_view.render(doc, width, unicode=unicode, table_width=ctx.table_width))
    except ValueError as exc:
        raise CliError(f"unexpected answer from GET /calendar: {exc}") from None
    return 0


# -- run ----------------------------------------------------------------------------------
def cmd_run(args, ctx: Context) -> int:
    form: list[tuple[str, str]] = [("image", args.image)]
    form += [("cmd", c) for c in args.command]
    if args.cores is not None:
        form.append(("cores", str(cores_option(args.cores))))
    if args.memory:
        form.append(("memory", memory_option(args.memory)))
    if args.duration:
        form.append(("duration", str(seconds_option(args.duration))))
    if args.run_id:
        form.append(("runId", args.run_id))
    form.append(("PHASE", "RUN"))
    with ctx.progress() as progress:
        progress.update("creating the UWS job")
        response = ctx.client.request("POST", "/uws/jobs", form=form, accept="application/xml, text/xml")
    job = parse_job(response.xml())
    job_id = job.get("jobId") or urllib.parse.unquote(response.url.rstrip("/").rsplit("/", 1)[-1])
    if args.no_wait:
        if ctx.output != "table":
            ctx.dump(job)
        else:
            ctx.print(job_id)
        return 0
    deadline = None if args.wait is None else time.monotonic() + args.wait
    with ctx.progress() as progress:
        while (job.get("phase") or "") in UWS_ACTIVE:
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(f"UWS job {job_id} is still {job.get('phase')} after {args.wait:g}s "
                               f"(it goes on: execplanner logs {job_id}, execplanner cancel {job_id})")
            text = f"UWS job {job_id}: {job.get('phase')}"
            start = parse_time(job.get("startTime"))
            if start and start > utc_now():
                text += f", starts {show_time(start)} UTC"
            elif job.get("quote"):
                text += f", done by about {show_time(job.get('quote'))} UTC"
            progress.update(text)
            began = time.monotonic()
            if job.get("phase") == "HELD":  # WAIT does not block while HELD: look again shortly
                ctx.sleep(2)
                job = parse_job(ctx.client.get_xml(job_url(job_id)))
            else:
                job = parse_job(ctx.client.get_xml(job_url(job_id), params={"WAIT": UWS_WAIT},
                                                   timeout=ctx.client.timeout + UWS_WAIT))
                if time.monotonic() - began < POLL_INTERVAL and job.get("phase") in UWS_ACTIVE:
                    ctx.sleep(POLL_INTERVAL)  # a server that does not block: do not hammer it
    log = None
    try:
        log = ctx.client.get_text(f"{job_url(job_id)}/results/log")
    except CliError as exc:
        if not exc.message.startswith("404 "):
            raise
    phase = job.get("phase") or "?"
    if ctx.output != "table":
        ctx.dump({"job": job, "log": log})
    else:
        ctx.print(f"UWS job {job_id}: {phase}")
        if log:
            ctx.stdout.write(log if log.endswith("\n") else log + "\n")
        elif log is None:
            ctx.print("(no log)")
    if phase != "COMPLETED":
        why = ((job.get("errorSummary") or {}).get("message")) or "no reason given"
        raise CliError(f"UWS job {job_id} ended {phase}: {why}")
    return 0
