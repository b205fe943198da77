"""What the planner's HTTP service reads and writes, as pydantic models: the IVOA
ExecutionPlanner note's task and answer (/accepts), the ExecutionBroker's offer sets and
sessions (/offersets, /sessions), and the service's own calendar and errors. The service's
OpenAPI document (/openapi.json) is generated from these; planner/tasks.py reads the requests
into ExecutionPlan specs (api/plan.py). UWS parameters are form fields, described in the
document itself."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NOTE_CONTAINER, NOTE_HELM = "uri://docker-container", "uri://kubernetes-helm"
NOTE_NOTEBOOK = "uri://jupyter-notebook"
EB_NOTEBOOK = "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0.yaml"
# The task types /accepts answers about: the note's URIs, and the CRD's and the draft's names of
# a notebook (all three name the same thing, as the CRD reads them).
NOTE_TYPES = {NOTE_CONTAINER: "docker-container", NOTE_HELM: "helm-chart", NOTE_NOTEBOOK: "jupyter-notebook",
              "jupyter-notebook": "jupyter-notebook", EB_NOTEBOOK: "jupyter-notebook"}
NOTEBOOK_NAMES = (NOTE_NOTEBOOK, "jupyter-notebook", EB_NOTEBOOK)
EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"
EB_SIMPLE_COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-1.0.yaml"
SESSION_STATES = ("PROPOSED", "OFFERED", "ACCEPTED", "REJECTED", "EXPIRED", "WAITING", "PREPARING", "READY",
                  "RUNNING", "RELEASING", "COMPLETED", "FAILED", "CANCELLED")

Amount = int | float | str  # a number, or a quantity / duration as text


class Wire(BaseModel):
    """Base of the wire types: unknown fields are kept (clients send more than we read)."""
    model_config = ConfigDict(populate_by_name=True, extra="allow")


class Error(Wire):
    """An error; `error` says what is wrong and `field` where (in the client's own names)."""
    error: str
    status: int
    field: str | None = None


# -- the ExecutionPlanner note: /accepts ---------------------------------------------------------

class TaskInfo(Wire):
    """What to run: an image for a container task; a chart (with its repository, version and
    values) for a Helm task; a notebook's `location` (its http(s) URL), `mode` (interactive or
    batch) and `sessions` (how many identical servers, a workshop, booked all or nothing) for a
    notebook task (and optionally its server `image`)."""
    image: str | None = None
    chart: str | None = None
    repository: str | None = None
    version: str | None = None
    values: dict[str, Any] | None = None
    location: str | None = Field(None, max_length=2048)
    mode: Literal["interactive", "batch"] | None = None
    sessions: int | None = Field(None, ge=1, le=1000)


class NoteResources(Wire):
    """The task's needs as ranges: cores and memory (quantities), duration, and how soon it must
    start (startup, from now). Any left out take the service's defaults. In an answer, what is
    offered, as the note writes it: cores as numbers, memory with a unit (in the question's unit),
    durations in the form the question used (10m, 9h30m; PT10M; seconds)."""
    model_config = ConfigDict(extra="forbid")
    mincores: Amount | None = None
    maxcores: Amount | None = None
    minmemory: Amount | None = None
    maxmemory: Amount | None = None
    minduration: Amount | None = None
    maxduration: Amount | None = None
    minstartup: Amount | None = None
    maxstartup: Amount | None = None


class AcceptsRequest(Wire):
    """Can this task run here, and what can be offered? (POST /accepts; nothing is booked.)"""
    tasktype: Literal[EB_NOTEBOOK, "jupyter-notebook", NOTE_CONTAINER, NOTE_NOTEBOOK, NOTE_HELM]
    taskinfo: TaskInfo | None = None
    resources: NoteResources | None = None


class Reason(Wire):
    httpcode: int | None = None
    text: str | None = None


class ResponseInfo(Wire):
    reasons: list[Reason] = []


class AcceptsResponse(Wire):
    """YES with what is offered, or NO with the reasons. `reponseword` and `reponseinfo` repeat
    `responseword` and `responseinfo` under the note's own spelling. A maximum the question left
    blank is offered up to what is free, at most the minimum times the planner's headroom."""
    responseword: Literal["YES", "NO"]
    reponseword: Literal["YES", "NO"]
    tasktype: str | None = None
    servicetype: str | None = None
    serviceinfo: dict[str, str] | None = None
    resources: NoteResources | None = None
    start: str | None = None
    nodes: list[str] | None = None
    footprint: str | None = Field(None, description="A chart's pods, as rendered (what is planned, per node).")
    sessions: int | None = Field(None, description=(
        "A notebook task's sessions: the offered cores and memory are each session's, all of them placed for "
        "the whole run."))
    reponseinfo: ResponseInfo | None = None
    responseinfo: ResponseInfo | None = None


# -- the ExecutionBroker: /offersets and /sessions --------------------------------------------------

class Image(Wire):
    """An image as the ExecutionBroker draft writes it."""
    ident: str | None = None
    name: str | None = None
    tag: str | None = None
    digest: str | None = None


class BrokerContainer(Wire):
    """The container to run (the draft's type URI; the note's and the CRD's names are read too)."""
    type: Literal[EB_DOCKER, "uri://docker-container", "docker-container"]
    image: str | Image
    privileged: bool | None = None
    entrypoint: str | list[str] | None = None
    environment: dict[str, str | int | float | bool] | None = None


class BrokerChart(Wire):
    """A Helm chart to install (beside the draft's types: the note's uri://kubernetes-helm, or the
    CRD's helm-chart), with its source as the ExecutionPlan names it. Its pods' own requests
    size the offers; compute resources, when given, cap them."""
    type: Literal[NOTE_HELM, "helm-chart"]
    chart: str = Field(min_length=1, max_length=1024)
    repository: str | None = Field(None, max_length=1024)
    version: str | None = Field(None, max_length=128)
    values: dict[str, Any] | None = None


class BrokerNotebook(Wire):
    """A Jupyter notebook (the draft's jupyter-notebook-1.0 type, whose one field is `location`;
    the note's uri://jupyter-notebook and the CRD's jupyter-notebook are read too). Beside the
    draft: `mode` (interactive, a notebook server per session, or batch, run top to bottom) and
    the server's `image`."""
    type: Literal[EB_NOTEBOOK, NOTE_NOTEBOOK, "jupyter-notebook"]
    location: str = Field(min_length=1, max_length=2048)
    mode: Literal["interactive", "batch"] | None = None
    image: str | None = Field(None, min_length=1, max_length=1024)
    environment: dict[str, str | int | float | bool] | None = None


BrokerExecutable = Annotated[BrokerContainer | BrokerChart | BrokerNotebook, Field(discriminator="type")]


class MinMax(Wire):
    """A requested range: numbers (memory in `units`, the draft's default GiB) or quantities as text."""
    min: Amount | None = None
    max: Amount | None = None
    minimal: bool | None = None
    units: str | None = None


class Requested(Wire):
    requested: MinMax | None = None


class Compute(Wire):
    """One compute resource (simple-compute): cores and memory (bare numbers of memory are GiB)."""
    type: str | None = None
    cores: Requested | None = None
    memory: Requested | None = None


class BrokerResources(Wire):
    compute: list[Compute] = Field([], max_length=1)


class Duration(Wire):
    min: Amount | None = None
    max: Amount | None = None


class RequestedSchedule(Wire):
    duration: str | Duration | None = None
    start: list[str] | None = None


class BrokerSchedule(Wire):
    requested: RequestedSchedule | None = None


class OfferSetRequest(Wire):
    """Ask for offers (POST /offersets); each offer holds capacity until it expires."""
    name: str | None = None
    executable: BrokerExecutable
    resources: BrokerResources | None = None
    schedule: BrokerSchedule | None = None
    offers: int | None = Field(None, ge=1, le=10)  # spec.offers of the plan (api/plan.py)
    sessions: int | None = Field(None, ge=1, le=1000, description=(
        "An interactive notebook's sessions (a workshop): this many identical servers, each of the compute "
        "resource's minimum, booked together or not at all."))


class Ref(Wire):
    uuid: str | None = None
    href: str | None = None


class Message(Wire):
    """A message as the ExecutionBroker draft writes one (its MessageItem): `level` and the
    text in `message`."""
    type: str | None = None
    time: str | None = None
    level: Literal["DEBUG", "WARN", "ERROR", "INFO", "OTHER"] | None = None
    template: str | None = None
    values: dict[str, str] | None = None
    message: str | None = None


class Endpoint(Wire):
    """Where one notebook session is reached: its URL, and the Secret holding its access token."""
    session: int | None = None
    url: str | None = None
    secret: str | None = None
    key: str | None = None


class Session(Wire):
    """One offer, and what it became once accepted (the run). Each compute resource's cores and
    memory carry `requested` exactly as the client sent it, and `offered` as the draft's integers
    (memory in GiB, or in `units` when not a whole number of GiB)."""
    uuid: str
    href: str
    name: str | None = None
    created: str | None = None
    expires: str | None = None
    messages: list[Message] | None = None
    offerset: Ref
    state: Literal[SESSION_STATES]
    executable: Any = None
    resources: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None
    options: list[dict[str, Any]] | None = None
    taskRun: str | None = None
    log: str | None = None
    sessions: int | None = Field(None, description="A notebook workshop's sessions (the offered size is theirs "
                                                   "in all).")
    endpoint: str | None = Field(None, description="A running notebook's first session's URL (in the cluster).")
    endpoints: list[Endpoint] | None = Field(None, description=(
        "A running notebook's sessions: each one's URL and the Secret (name and key, in the owner's namespace) "
        "holding its access token; the token itself is never sent."))
    result: str | None = Field(None, description="A batch notebook's executed notebook, once kept (its URL).")


class OfferSet(Wire):
    """An offer set: the answer, YES (with offers, and `expires`: the earliest offer's expiry) or
    NO (the messages say why); while the offers are being prepared, no `result` yet."""
    uuid: str
    href: str
    name: str | None = None
    created: str | None = None
    expires: str | None = None
    result: Literal["YES", "NO"] | None = None
    messages: list[Message] | None = None
    offers: list[Session]


class Update(Wire):
    type: Literal["uri:enum-value-update"] | None = None
    path: Literal["state"]
    value: Literal["ACCEPTED", "REJECTED", "CANCELLED"]


class UpdateRequest(Wire):
    """Accept, reject or cancel a session."""
    update: Update


class OfferSets(Wire):
    offersets: list[OfferSet] | None = None


class Sessions(Wire):
    sessions: list[Session] | None = None


# -- the service's own: /calendar -------------------------------------------------------------------

class CalendarNode(Wire):
    name: str | None = None
    ready: bool | None = None
    allocatable: dict[str, Any] | None = None
    used: dict[str, Any] | None = None
    bookings: list[dict[str, Any]] | None = None


class Calendar(Wire):
    """Bookings per node over the next hours."""
    now: str
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    nodes: list[CalendarNode]


# -- several sites: /federation/* (planner/federation.py) ---------------------------------------

class SiteStatus(Wire):
    """How a site answered a federated question: answered, timeout or failed (with why)."""
    site: str
    url: str
    status: Literal["answered", "timeout", "failed"]
    ms: float
    httpStatus: int | None = None
    error: str | None = None


class FederatedAnswer(Wire):
    """Every site's /accepts answer, labelled with `site`: YES first, then the earliest start,
    then the smallest offer that serves."""
    responseword: Literal["YES", "NO"]
    answers: list[dict[str, Any]]
    sites: list[SiteStatus]


class FederatedOffers(Wire):
    """The offers of every site's offer set, labelled with `site`, by start; each is accepted at
    its own `href`."""
    result: Literal["YES", "NO"]
    offers: list[dict[str, Any]]
    offersets: list[dict[str, Any]]
    sites: list[SiteStatus]


class FederatedSessions(Wire):
    sessions: list[dict[str, Any]]
    sites: list[SiteStatus]


DOCUMENTED = (Error, AcceptsRequest, AcceptsResponse, OfferSetRequest, OfferSet, Session, UpdateRequest,
              OfferSets, Sessions, Calendar, FederatedAnswer, FederatedOffers, FederatedSessions)


# -- the web page's reads: /nodes, /calendar/compact, /calendar/version, /bookings (planner/http/web.py) --

class NodeInfo(Wire):
    name: str
    ready: bool | None = None
    labels: dict[str, str] = {}


class Nodes(Wire):
    """The nodes, with those of their labels that name node pools (`groupLabels`, in order)."""
    groupLabels: list[str]
    nodes: list[NodeInfo]


class CompactNode(Wire):
    name: str
    ready: bool | None = None
    allocatable: list[int]
    used: list[int]
    bookings: list[list[int]]


class CompactCalendar(Wire):
    """/calendar as numbers: sizes in `units` (millicores, bytes, GPUs), a booking as [start, end,
    millicores, bytes, gpus, kind, name] with start and end in seconds after `from`, kind an
    index into `kinds` and name into `names` (-1: not the caller's, so not named)."""
    now: str
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    units: list[str]
    kinds: list[str]
    names: list[str]
    nodes: list[CompactNode]


class CalendarVersion(Wire):
    """Changes whenever the calendar or the caller's own plans change: fetch /calendar again then."""
    version: str


class MyBooking(Wire):
    """One of the caller's bookings (or held offers, state OFFERED): where and when, its state
    (a session's state, a UWS job's phase, or a plan's phase), and the URLs to cancel it (a
    session: POST an update to CANCELLED; a UWS job: POST PHASE=ABORT) and to read its log."""
    plan: str
    name: str
    source: Literal["offerset", "uws", "plan"]
    state: str
    phase: str
    start: str | None = None
    end: str | None = None
    cores: str | None = None
    memory: str | None = None
    gpus: int = 0
    nodes: list[str] = []
    href: str | None = None
    cancel: str | None = None
    log: str | None = None
    expires: str | None = None
    message: str | None = None


class Bookings(Wire):
    bookings: list[MyBooking]


DOCUMENTED = DOCUMENTED + (Nodes, CompactCalendar, CalendarVersion, Bookings)
