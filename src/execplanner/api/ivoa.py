"""What the planner's HTTP service reads and writes, as pydantic models: the IVOA
ExecutionPlanner note's task and answer (/accepts), the ExecutionBroker's offer sets and
sessions (/offersets, /sessions), and the service's own calendar and errors. The service's
OpenAPI document (/openapi.json) is generated from these; planner/tasks.py reads the requests
into ExecutionPlan specs (api/plan.py). UWS parameters are form fields, described in the
document itself."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

NOTE_CONTAINER, NOTE_HELM = "uri://docker-container", "uri://kubernetes-helm"
NOTE_TYPES = {NOTE_CONTAINER: "docker-container", NOTE_HELM: "helm-chart"}
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
    values) for a Helm task."""
    image: str | None = None
    chart: str | None = None
    repository: str | None = None
    version: str | None = None
    values: dict[str, Any] | None = None


class NoteResources(Wire):
    """The task's needs as ranges: cores and memory (quantities), duration, and how soon it must
    start (startup, from now). Any left out take the service's defaults."""
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
    tasktype: Literal[NOTE_CONTAINER, NOTE_HELM]
    taskinfo: TaskInfo | None = None
    resources: NoteResources | None = None


class Reason(Wire):
    httpcode: int | None = None
    text: str | None = None


class ResponseInfo(Wire):
    reasons: list[Reason] = []


class AcceptsResponse(Wire):
    """YES with what is offered, or NO with the reasons. `reponseword` and `reponseinfo` repeat
    `responseword` and `responseinfo` under the note's own spelling."""
    responseword: Literal["YES", "NO"]
    reponseword: Literal["YES", "NO"]
    tasktype: str | None = None
    servicetype: str | None = None
    serviceinfo: dict[str, str] | None = None
    resources: dict[str, str] | None = None
    start: str | None = None
    nodes: list[str] | None = None
    reponseinfo: ResponseInfo | None = None
    responseinfo: ResponseInfo | None = None


# -- the ExecutionBroker: /offersets and /sessions --------------------------------------------------

class Image(Wire):
    """An image as the ExecutionBroker draft writes it."""
    ident: str | None = None
    name: str | None = None
    tag: str | None = None
    digest: str | None = None


class BrokerExecutable(Wire):
    """The container to run (the draft's type URI; the note's and the CRD's names are read too)."""
    type: Literal[EB_DOCKER, "uri://docker-container", "docker-container"]
    image: str | Image
    privileged: bool | None = None
    entrypoint: str | list[str] | None = None
    environment: dict[str, str | int | float | bool] | None = None


class MinMax(Wire):
    min: Amount | None = None
    max: Amount | None = None
    minimal: bool | None = None


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
    offers: int | None = Field(None, ge=1, le=20)


class Ref(Wire):
    uuid: str | None = None
    href: str | None = None


class Session(Wire):
    """One offer, and what it became once accepted (the run)."""
    uuid: str
    href: str
    name: str | None = None
    created: str | None = None
    expires: str | None = None
    messages: list[str] | None = None
    offerset: Ref
    state: Literal[SESSION_STATES]
    executable: Any = None
    resources: dict[str, Any] | None = None
    schedule: dict[str, Any] | None = None
    options: list[dict[str, Any]] | None = None
    taskRun: str | None = None
    log: str | None = None


class OfferSet(Wire):
    """An offer set: the answer (YES, NO, or PENDING while being planned) and its offers."""
    uuid: str
    href: str
    name: str | None = None
    created: str | None = None
    expires: str | None = None
    result: Literal["YES", "NO", "PENDING"]
    messages: list[str] | None = None
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


DOCUMENTED = (Error, AcceptsRequest, AcceptsResponse, OfferSetRequest, OfferSet, Session, UpdateRequest,
              OfferSets, Sessions, Calendar)
