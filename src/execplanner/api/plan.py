"""The ExecutionPlan: its spec (what to run, with which resources, for how long and when) and
its status (the offers, the booking, the phase), as pydantic models.

These models are the API's one definition: `make crds` generates the CRD's schema from them
(crds/executionplans.execplanner.io.yaml), and the operator and the planner read plans through
them. What pydantic cannot check on its own, the API server checks at apply time with the CEL
rules attached here to the fields they check; engine/specs.py reads the quantities, durations
and windows with the same parsers as every other way in (api/units.py).
"""
from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from .schema import Model, applied_default, rule, rules

CONTAINER_TYPES = {
    "docker-container",
    "uri://docker-container",
    "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml",
}
HELM_TYPES = {"helm-chart", "uri://kubernetes-helm"}
# The IVOA ExecutionPlanner note's "uri://jupyter-notebook" and the ExecutionBroker draft's
# schema URI (types/executables/jupyter-notebook-1.0.yaml, whose one field is `location`).
EB_NOTEBOOK = "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0.yaml"
NOTEBOOK_TYPES = {"jupyter-notebook", "uri://jupyter-notebook", EB_NOTEBOOK}
_CONTAINER_LIST = ", ".join(f"'{t}'" for t in ("docker-container", "uri://docker-container",
                            "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"))
_HELM_LIST = "'helm-chart', 'uri://kubernetes-helm'"
_NOTEBOOK_LIST = ", ".join(f"'{t}'" for t in ("jupyter-notebook", "uri://jupyter-notebook", EB_NOTEBOOK))
MAX_SESSIONS = 1000

# The regular expressions the CEL rules use (RE2): durations (ISO 8601 without years and
# months, or the IVOA note's short forms, at most 9 digits a number) and instants with a zone.
DURATION_RE = (r"^(P([0-9]{1,9}W)?([0-9]{1,9}D)?(T([0-9]{1,9}H)?([0-9]{1,9}M)?([0-9]{1,9}S)?)?"
               r"|([0-9]{1,9}d)?([0-9]{1,9}h)?([0-9]{1,9}m)?([0-9]{1,9}s)?)$")
_INSTANT = (r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
            r"([.][0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")
_ISO_DURATION = r"P([0-9]{1,9}W)?([0-9]{1,9}D)?(T([0-9]{1,9}H)?([0-9]{1,9}M)?([0-9]{1,9}S)?)?"
INTERVAL_RE = f"^{_INSTANT}/({_INSTANT}|{_ISO_DURATION})$"
_SECONDS = "\n   + ".join(
    f"(d.find('[0-9]{{1,9}}[{u}{u.upper()}]') == '' ? 0 : int(d.find('[0-9]{{1,9}}[{u}{u.upper()}]').find('[0-9]+')){m})"
    for u, m in (("w", " * 604800"), ("d", " * 86400"), ("h", " * 3600"), ("m", " * 60"), ("s", "")))


def _quantity_rules(what: str, example: str, low: str, low_says: str, high: str, high_says: str) -> dict[str, Any]:
    return rules(
        rule("isQuantity(string(self))", expression=f"'must be a quantity of {what} such as {example}, not ' + string(self)"),
        rule(f"!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('{low}')) >= 0",
             expression=f"'{low_says}, not ' + string(self){' + ' + repr(' (a bare number is bytes: write 8Gi or 8G)') if what == 'memory' else ''}"),
        rule(f"!isQuantity(string(self)) || quantity(string(self)).compareTo(quantity('{high}')) <= 0",
             expression=f"'{high_says}, not ' + string(self)"),
        maxLength=64)


def _min_not_above_max(name: str) -> dict[str, Any]:
    return rules(rule("!has(self.max) || !isQuantity(string(self.min)) || !isQuantity(string(self.max)) "
                      "|| quantity(string(self.min)).compareTo(quantity(string(self.max))) <= 0",
                      expression=f"'{name}.min (' + string(self.min) + ') must not be more than {name}.max "
                                 "(' + string(self.max) + ')'", field_path=".max"))


_CORES = _quantity_rules("cores", '2, "1.5" or "500m"', "1m", "must be positive (at least 1m, a thousandth of a core)",
                         "1M", "must be at most 1M (a million cores)")
_MEMORY = _quantity_rules("memory", '"4Gi", "8G" or "512Mi"', "1Mi", "must be at least 1Mi", "1Ei", "must be at most 1Ei")
_DURATION = rules(
    rule(f"self.matches('{DURATION_RE}') && self.matches('[0-9]') && !self.endsWith('T')",
         expression="'must be a duration: ISO 8601 such as PT2H, P1DT2H, PT90M (no years or months) or a short form "
                    "such as 10m, 9h, 60s, 1h30m, 2d; not \"' + self + '\"'"),
    rule("self.matches('[1-9]')", expression="'must be longer than zero, not \"' + self + '\"'"))
_INTERVAL = rules(
    rule(f"self.matches('{INTERVAL_RE}')",
         expression="'must be an ISO 8601 interval with a time zone, <start>/<end> or <start>/<duration>, e.g. "
                    "2026-11-24T15:00:00Z/2026-11-24T17:00:00Z or 2026-11-24T15:00:00Z/PT2H; not \"' + self + '\"'"),
    rule(f"!self.matches('{INTERVAL_RE}') || (self.find('[^/]+$').startsWith('P')\n"
         "    ? self.find('[^/]+$').matches('[1-9]') && !self.endsWith('T')\n"
         "    : timestamp(self.find('^[^/]+')) < timestamp(self.find('[^/]+$')))",
         "the interval must end after it starts (a later end, or a duration longer than zero)",
         expression="'the interval must end after it starts (a later end, or a duration longer than zero): \"' "
                    "+ self + '\"'"),
    maxLength=128)
QUANTITY = {"x-kubernetes-int-or-string": True}  # a status quantity (what the operator wrote)
DATE_TIME = {"format": "date-time"}


# -- spec -----------------------------------------------------------------------------------------

class EnvVar(Model):
    """One environment variable."""
    name: str = Field(description="Name of the variable; a C identifier is safest (letters, digits, underscore).",
                      min_length=1, max_length=256)
    value: str = Field("", description="Value of the variable (empty when left out).")


class ExecutableType(StrEnum):
    """Kind of task. "docker-container" (also accepted as the IVOA URIs "uri://docker-container" and
    "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml") runs one
    container; "helm-chart" (also "uri://kubernetes-helm") installs a Helm chart; "jupyter-notebook"
    (also "uri://jupyter-notebook" and
    "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0.yaml") runs the
    notebook at location, in a notebook server per session (mode interactive) or top to bottom
    (mode batch)."""
    DOCKER = "docker-container"
    DOCKER_URI = "uri://docker-container"
    DOCKER_EB = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"
    HELM = "helm-chart"
    HELM_URI = "uri://kubernetes-helm"
    NOTEBOOK = "jupyter-notebook"
    NOTEBOOK_URI = "uri://jupyter-notebook"
    NOTEBOOK_EB = EB_NOTEBOOK


class NotebookMode(StrEnum):
    """How a notebook runs. interactive (default): a notebook server per session, from the booked
    start to the booked end, reachable at status.endpoints. batch: the notebook is executed top to
    bottom once, and the executed notebook is kept (status.result)."""
    INTERACTIVE = "interactive"
    BATCH = "batch"


class Executable(Model):
    """The task to run. For container types (docker-container) set image and optionally command,
    args, env; for the Helm type (helm-chart) set chart and optionally repository, version, values;
    for the notebook types (jupyter-notebook) set location and optionally mode, image, env."""
    model_config = Model.model_config | {"json_schema_extra": rules(
        rule(f"!has(self.type) || !(self.type in [{_CONTAINER_LIST}]) || has(self.image)",
             expression="'image is required when executable.type is ' + self.type", field_path=".image",
             reason="FieldValueRequired"),
        rule(f"!has(self.type) || !(self.type in [{_HELM_LIST}]) || has(self.chart)",
             expression="'chart is required when executable.type is ' + self.type", field_path=".chart",
             reason="FieldValueRequired"),
        rule(f"!has(self.type) || !(self.type in [{_NOTEBOOK_LIST}]) || has(self.location)",
             expression="'location (the notebook\\'s URL) is required when executable.type is ' + self.type",
             field_path=".location", reason="FieldValueRequired"),
        rule(f"!has(self.location) || (has(self.type) && self.type in [{_NOTEBOOK_LIST}])",
             "location only applies to the notebook types (jupyter-notebook)", field_path=".location"),
        rule(f"!has(self.mode) || (has(self.type) && self.type in [{_NOTEBOOK_LIST}])",
             "mode only applies to the notebook types (jupyter-notebook)", field_path=".mode"))}

    type: ExecutableType
    image: str | None = Field(None, min_length=1, max_length=1024, description=(
        'Container image reference, e.g. "busybox:1.36" or "ghcr.io/org/tool@sha256:...". Required for container '
        "types. For the notebook types, the notebook server's image (it needs python and jupyter: jupyter lab for "
        "mode interactive, jupyter nbconvert for mode batch); the operator's EXECPLANNER_NOTEBOOK_IMAGE when left "
        "out."))
    location: str | None = Field(None, max_length=2048, json_schema_extra=rules(
        rule("self.matches('^https?://[^\\\\s]+$')",
             expression="'must be the notebook\\'s http or https URL, not \"' + self + '\"'")), description=(
        'URL of the notebook (.ipynb) to run, e.g. "https://example.org/tutorials/gaia.ipynb" (the IVOA '
        "ExecutionBroker draft's location). Fetched by each notebook server when it starts. Required for the notebook "
        "types."))
    mode: NotebookMode | None = Field(None, description=(
        "For the notebook types: interactive (the default) or batch."))
    command: list[Annotated[str, Field(description="One word of the entrypoint.")]] = Field(
        default_factory=list, max_length=256,
        description="Entrypoint of the container (overrides the image's ENTRYPOINT). Not run in a shell.")
    args: list[Annotated[str, Field(description="One argument.")]] = Field(
        default_factory=list, max_length=1024, description="Arguments to the entrypoint (override the image's CMD).")
    env: list[EnvVar] = Field(default_factory=list, max_length=256, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description='Environment variables set in the container (the IVOA draft\'s "environment").')
    privileged: bool = Field(False, json_schema_extra=rules(rule(
        "!self", "privileged containers are refused: leave executable.privileged out or set it to false")),
        description="Whether the container would run privileged. Always refused: the field exists because the IVOA "
                    "ExecutionBroker draft has it; leave it out or set it to false.")
    pod_labels: dict[str, Annotated[str, Field(description="Label value.")]] = Field(
        default_factory=dict, alias="podLabels", description="Labels copied onto the task's pods.")
    pod_annotations: dict[str, Annotated[str, Field(description="Annotation value.")]] = Field(
        default_factory=dict, alias="podAnnotations",
        description="Annotations copied onto the task's pods. On the local (kwok) cluster "
                    'pod-complete.stage.kwok.x-k8s.io/delay (e.g. "20s") tells the fake nodes how long the '
                    "simulated task runs.")
    chart: str | None = Field(None, min_length=1, max_length=1024, description=(
        'Helm chart to install: a chart name in repository (e.g. "podinfo"), an OCI reference (e.g. '
        '"oci://ghcr.io/stefanprodan/charts/podinfo"), the URL of a packaged chart (https://.../chart-1.0.0.tgz), '
        "or a chart path the operator can read (refused unless EXECPLANNER_ALLOW_LOCAL_CHARTS). Required for the "
        "Helm type."))
    repository: str | None = Field(None, max_length=1024, description=(
        'URL of the Helm chart repository (e.g. "https://stefanprodan.github.io/podinfo"), or an oci:// registry '
        "path the chart name is appended to; not needed when chart is a full OCI reference or URL."))
    version: str | None = Field(None, max_length=128, description=(
        "Chart version or version constraint; the latest version when left out."))
    values: dict[str, Any] = Field(default_factory=dict, description=(
        "Values passed to the chart (as with helm install -f values.yaml); any shape."))

    @property
    def is_container(self) -> bool:
        return self.type in CONTAINER_TYPES

    @property
    def is_helm(self) -> bool:
        return self.type in HELM_TYPES

    @property
    def is_notebook(self) -> bool:
        return self.type in NOTEBOOK_TYPES

    @property
    def is_batch(self) -> bool:
        """A notebook run top to bottom (mode batch)."""
        return self.is_notebook and self.mode is NotebookMode.BATCH


class CoresRange(Model):
    """CPU cores, as Kubernetes quantities: 2, "1.5", "500m" (= half a core). Compared as
    quantities, so min must not exceed max."""
    model_config = Model.model_config | {"json_schema_extra": _min_not_above_max("cores")}
    min: int | str = Field(json_schema_extra=_CORES, description=(
        'Fewest cores the task can run with: an integer or a quantity string (2, "1.5", "500m"), from 1m to 1M.'))
    max: int | str | None = Field(None, json_schema_extra=_CORES, description=(
        "Most cores the task can use: an integer or a quantity string, from 1m to 1M; defaults to min."))


class MemoryRange(Model):
    """Memory, as Kubernetes quantities: "4Gi" (4 x 2^30 bytes), "8G" (8 x 10^9 bytes, as
    Kubernetes reads G), "512Mi". A bare number is bytes, so at least 1Mi is required. Compared
    as quantities, so min must not exceed max ("min: 1G, max: 1Gi" is fine, "min: 2Gi, max:
    1000Mi" is not)."""
    model_config = Model.model_config | {"json_schema_extra": _min_not_above_max("memory")}
    min: int | str = Field(json_schema_extra=_MEMORY, description=(
        'Least memory the task can run with: a quantity string ("4Gi", "8G", "512Mi") or a number of bytes, '
        "from 1Mi to 1Ei."))
    max: int | str | None = Field(None, json_schema_extra=_MEMORY, description=(
        "Most memory the task can use: a quantity string or a number of bytes, from 1Mi to 1Ei; defaults to min."))


class GpuRange(Model):
    """GPUs (nvidia.com/gpu), whole devices. Leave out for none."""
    model_config = Model.model_config | {"json_schema_extra": rules(rule(
        "!has(self.max) || self.min <= self.max", "gpus.min must not be more than gpus.max", field_path=".max"))}
    min: int = Field(ge=0, le=1024, description="Fewest GPUs the task can run with (0 or more).")
    max: int | None = Field(None, ge=0, le=1024, description="Most GPUs the task can use (0 or more); defaults to min.")


class Resources(Model):
    """Resources the task needs. Each is a range {min, max}: offers give at least min and at most
    max; max defaults to min (the operator fills it in). cores and memory are required. Required
    for container tasks; optional for a Helm chart, whose pods' own requests size the booking:
    there the maxima (or the minima when there is no max) cap the chart's total, and a chart
    needing more is Rejected (ExceedsResources)."""
    cores: CoresRange
    memory: MemoryRange
    gpus: GpuRange | None = None


class DurationRange(Model):
    """How long the task needs: the booking lasts at least min and at most max (max defaults to
    min). Durations are ISO 8601 without years or months ("PT2H", "P1DT2H", "PT90M", "P1W") or
    short forms ("10m", "9h", "60s", "1h30m", "2d"); each number has at most 9 digits."""
    model_config = Model.model_config | {"json_schema_extra": rules(rule(
        f"!has(self.max) || !self.min.matches('{DURATION_RE}') || !self.max.matches('{DURATION_RE}') "
        f"|| [[self.min, self.max].map(d,\n     {_SECONDS})\n   ].all(s, s[0] <= s[1])",
        "duration.min must not be longer than duration.max",
        expression="'duration.min (' + self.min + ') must not be longer than duration.max (' + self.max + ')'",
        field_path=".max"))}
    min: str = Field(max_length=64, json_schema_extra=_DURATION,
                     description='Shortest time the task needs, e.g. "PT30M" or "30m".')
    max: str | None = Field(None, max_length=64, json_schema_extra=_DURATION,
                            description='Longest time the task can use, e.g. "PT2H" or "2h"; defaults to min.')


class Schedule(Model):
    """How long the task runs and when it may start."""
    duration: DurationRange
    start: list[Annotated[str, Field(
        json_schema_extra=_INTERVAL,
        description='One start window, an ISO 8601 interval such as "2026-11-24T15:00:00Z/PT2H".')]] = Field(
        default_factory=list, max_length=32, description=(
            'Windows in which the task may start, as ISO 8601 intervals with a time zone: "<start>/<end>" (e.g. '
            '"2026-11-24T15:00:00Z/2026-11-24T17:00:00Z") or "<start>/<duration>" (e.g. '
            '"2026-11-24T15:00:00Z/PT2H"). The task starts at some instant inside one of them (it may run past the '
            "window's end). Absent or empty: as soon as possible."))


class AcceptPolicy(StrEnum):
    """What to do with the offers. First (default): book the best offer at once. Manual: hold the
    offers (status.offers) until spec.acceptedOffer names one, which books it and releases the
    others; offers not accepted before they expire are released and the plan becomes Expired."""
    FIRST = "First"
    MANUAL = "Manual"


class Toleration(Model):
    """One toleration, as in the Kubernetes Pod API."""
    key: str | None = Field(None, description="Taint key to tolerate; empty with operator Exists matches every taint.")
    operator: str | None = Field(None, json_schema_extra={"enum": ["Exists", "Equal"]}, description=(
        "Exists (any value) or Equal (value must match); Equal when left out."))
    value: str | None = Field(None, description="Taint value to match with operator Equal.")
    effect: str | None = Field(None, json_schema_extra={"enum": ["NoSchedule", "PreferNoSchedule", "NoExecute"]},
                               description="Taint effect to match (NoSchedule, PreferNoSchedule, NoExecute); all "
                                           "effects when left out.")
    toleration_seconds: int | None = Field(None, alias="tolerationSeconds", json_schema_extra={"format": "int64"},
                                           description="With effect NoExecute, how long the pod stays bound after "
                                                       "the taint appears; forever when left out.")


class PlanSpec(Model):
    """What to run, with which resources, for how long and when."""
    model_config = Model.model_config | {"json_schema_extra": rules(
        rule(f"has(self.resources) || (has(self.executable.type) && self.executable.type in [{_HELM_LIST}])",
             "resources is required for container and notebook tasks (only a Helm chart's own requests can size it)",
             field_path=".resources", reason="FieldValueRequired"),
        rule(f"!has(self.sessions) || self.sessions == 1 || (has(self.executable.type) && self.executable.type in "
             f"[{_NOTEBOOK_LIST}] && (!has(self.executable.mode) || self.executable.mode == 'interactive'))",
             "sessions above 1 only apply to interactive notebooks (executable.type jupyter-notebook, mode "
             "interactive)", field_path=".sessions"),
        rule("!has(self.acceptedOffer) || (has(self.acceptPolicy) && self.acceptPolicy == 'Manual')",
             "acceptedOffer only applies with acceptPolicy: Manual (with First the best offer is booked at once)",
             field_path=".acceptedOffer"))}

    executable: Executable
    resources: Resources | None = None  # required for containers; optional caps for a chart
    schedule: Schedule
    sessions: int = Field(1, ge=1, le=MAX_SESSIONS, json_schema_extra=applied_default(), description=(
        "For an interactive notebook: how many identical notebook servers to book (1 to 1000), a workshop's "
        "participants. They are booked together or not at all: every session placed for the whole booking, each "
        "with the resources' minimum (one session gets what the ranges allow, as a container does). Each session "
        "has its own server, Service, access token and endpoint (status.endpoints)."))
    offers: int = Field(1, ge=1, le=10, json_schema_extra=applied_default(), description=(
        "How many alternative offers to make (1 to 10). Each offer holds its capacity until it is accepted, "
        "rejected or expires."))
    accept_policy: AcceptPolicy = Field(AcceptPolicy.FIRST, alias="acceptPolicy", json_schema_extra=applied_default())
    accepted_offer: str | None = Field(None, alias="acceptedOffer", min_length=1, max_length=253, description=(
        "With acceptPolicy Manual, the id of the offer (from status.offers[].id) to book."))
    cancel: bool = Field(False, json_schema_extra=applied_default(), description=(
        "Set to true to abort the plan at any point; its offers and booking are released and a running task is "
        "stopped."))
    suspend: bool = Field(False, json_schema_extra=applied_default(), description=(
        "While true the plan waits in Pending without being planned or booked (a UWS job before PHASE=RUN). "
        "Setting it back to false plans it."))
    rejected_offers: tuple[Annotated[str, Field(max_length=253, description="An offer id from status.offers[].id.")],
                           ...] = Field((), alias="rejectedOffers", max_length=20, description=(
        "With acceptPolicy Manual, ids of offers (status.offers[].id) the user turned down; their capacity is "
        "released at once. When every offer is rejected the plan ends Rejected."))
    destruction: str | None = Field(None, json_schema_extra=DATE_TIME, description=(
        "When to delete the plan (RFC 3339), whatever its phase; a running task is stopped first. The UWS "
        "destruction time."))
    node_selector: dict[str, Annotated[str, Field(description="Required label value.")]] = Field(
        default_factory=dict, alias="nodeSelector", description=(
            "Node labels the task's pods must match (as a pod's spec.nodeSelector); the planner only offers "
            "capacity on such nodes."))
    # Kept as the Pod API's dicts (they are copied onto pods); the schema is Toleration's.
    tolerations: list[dict[str, Any]] = Field(default_factory=list, max_length=64, json_schema_extra={
        "items": Toleration.model_json_schema(by_alias=True)},
        description="Taints the task's pods tolerate (as a pod's spec.tolerations).")


# -- status -----------------------------------------------------------------------------------------

class Phase(StrEnum):
    """Pending (being planned), Offered (offers waiting for acceptance), Booked (capacity held
    until the start), Starting, Running, Completed, Failed, Rejected (cannot be satisfied, or the
    offers were declined), Expired (offers not accepted in time), Cancelled (spec.cancel). In IVOA
    ExecutionBroker terms Offered=OFFERED, Booked=WAITING, Starting=PREPARING, Running=RUNNING,
    Completed=COMPLETED, Failed=FAILED, Rejected=REJECTED, Expired=EXPIRED, Cancelled=CANCELLED."""
    PENDING = "Pending"
    OFFERED = "Offered"
    BOOKED = "Booked"
    STARTING = "Starting"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    CANCELLED = "Cancelled"


class Placement(Model):
    """Capacity held for one pod on one node."""
    pod: str | None = Field(None, description=(
        'The pod it is for ("main" for a container task; "<Kind>/<name>#<i>" for a chart\'s pods).'))
    node: str | None = Field(None, description="Node name.")
    cores: int | str | None = Field(None, json_schema_extra=QUANTITY, description="Cores held (a quantity).")
    memory: int | str | None = Field(None, json_schema_extra=QUANTITY, description="Memory held (a quantity).")
    gpus: int | None = Field(None, ge=0, description="GPUs held.")


class Offer(Model):
    """One offer."""
    id: str | None = Field(None, description="Offer id; put it in spec.acceptedOffer to book this offer.")
    start: str | None = Field(None, json_schema_extra=DATE_TIME, description="When the task would start (RFC 3339).")
    end: str | None = Field(None, json_schema_extra=DATE_TIME, description="When the booking would end (RFC 3339).")
    cores: int | str | None = Field(None, json_schema_extra=QUANTITY, description="Cores offered (a quantity).")
    memory: int | str | None = Field(None, json_schema_extra=QUANTITY, description="Memory offered (a quantity).")
    gpus: int | None = Field(None, ge=0, description="GPUs offered.")
    expires: str | None = Field(None, json_schema_extra=DATE_TIME, description=(
        "When the offer lapses and its capacity is released, unless accepted (RFC 3339)."))
    placements: list[Placement] = Field(default_factory=list, json_schema_extra={"x-kubernetes-list-type": "atomic"},
                                        description="Where the offered capacity is held, one entry per pod (a node "
                                                    "may repeat).")


class Booking(Model):
    """The booked offer (from Booked on)."""
    offer: str | None = Field(None, description="Id of the booked offer.")
    start: str | None = Field(None, json_schema_extra=DATE_TIME, description="Booked start (RFC 3339).")
    end: str | None = Field(None, json_schema_extra=DATE_TIME, description=(
        "Booked end; the task is stopped if it still runs then (RFC 3339)."))
    cores: int | str | None = Field(None, json_schema_extra=QUANTITY, description="Booked cores (a quantity).")
    memory: int | str | None = Field(None, json_schema_extra=QUANTITY, description="Booked memory (a quantity).")
    gpus: int | None = Field(None, ge=0, description="Booked GPUs.")
    placements: list[Placement] = Field(default_factory=list, json_schema_extra={"x-kubernetes-list-type": "atomic"},
                                        description="Where the booked capacity is held, one entry per pod (a node "
                                                    "may repeat).")


class Release(Model):
    """A Helm chart task's release and whether it may be installed (so it is uninstalled after a crash)."""
    name: str | None = Field(None, description="The helm release name (xp-<plan name>-<hash of the plan's uid>).")
    installed: bool | None = Field(None, description="True from just before the install until it was uninstalled.")


class Endpoint(Model):
    """Where one notebook session is reached, and the Secret holding its access token."""
    session: int | None = Field(None, ge=1, description="The session's number (1 to spec.sessions).")
    url: str | None = Field(None, description=(
        "URL of the session's notebook server inside the cluster (http://<service>.<namespace>.svc:8888/); log in "
        "with the token."))
    secret: str | None = Field(None, description=(
        "Name of the Secret (the plan's namespace) holding the session's access token; only those who may read "
        "Secrets there can use the session."))
    key: str | None = Field(None, description="The key of the token in that Secret.")


class Result(Model):
    """What a batch notebook left behind: the executed notebook, kept in a ConfigMap owned by the plan."""
    config_map: str | None = Field(None, alias="configMap", description=(
        "Name of the ConfigMap (the plan's namespace) that holds the executed notebook."))
    key: str | None = Field(None, description="The key of the executed notebook in that ConfigMap.")
    size: int | None = Field(None, ge=0, json_schema_extra={"format": "int64"}, description=(
        "Size of the executed notebook in bytes."))


class Condition(Model):
    """One condition."""
    type: str = Field(max_length=316, description="Condition type in CamelCase (e.g. Ready, Booked).")
    status: str = Field(json_schema_extra={"enum": ["True", "False", "Unknown"]}, description="True, False or Unknown.")
    reason: str | None = Field(None, max_length=1024, description=(
        "Machine-readable CamelCase reason for the last transition."))
    message: str | None = Field(None, max_length=32768, description="Human-readable details of the last transition.")
    last_transition_time: str | None = Field(None, alias="lastTransitionTime", json_schema_extra=DATE_TIME,
                                             description="When the status last changed (RFC 3339).")
    observed_generation: int | None = Field(None, alias="observedGeneration", ge=0, json_schema_extra={
        "format": "int64"}, description="The metadata.generation the condition was set for.")


CONDITIONS = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}
OBSERVED_GENERATION = Field(None, alias="observedGeneration", ge=0, json_schema_extra={"format": "int64"},
                            description="The metadata.generation of the spec this status describes.")


class PlanStatus(Model):
    """Observed state, written by the operator. Unknown fields are kept (the operator framework
    keeps its own bookkeeping here)."""
    model_config = Model.model_config | {"json_schema_extra": {"x-kubernetes-preserve-unknown-fields": True}}
    phase: Phase | None = None
    message: str | None = Field(None, description=(
        "Human-readable explanation of the phase (e.g. why no offer could be made)."))
    observed_generation: int | None = OBSERVED_GENERATION
    task_run: str | None = Field(None, alias="taskRun", description=(
        "Name of the TaskRun that runs the booked task (same namespace)."))
    offers: list[Offer] = Field(default_factory=list, json_schema_extra={"x-kubernetes-list-type": "atomic"},
                                description="The offers made (acceptPolicy Manual), each holding its capacity until "
                                            "it expires.")
    booking: Booking | None = None
    footprint: dict[str, Any] | None = Field(None, description=(
        "A Helm chart's footprint, as rendered once before planning: every pod it would create with its effective "
        "requests, per workload (pods, cores, memory and gpus per pod), the totals, the release name and a digest "
        "of spec.executable (a changed executable is rendered again). The booking places these pods."))
    release: Release | None = None
    endpoints: list[Endpoint] = Field(default_factory=list, json_schema_extra={"x-kubernetes-list-type": "atomic"},
                                      description="An interactive notebook's sessions, one entry each, from the "
                                                  "launch (shortly before the start) to the booking's end.")
    endpoint: str | None = Field(None, description=(
        "The first session's URL (endpoints[0].url): the one for a plan of one session."))
    result: Result | None = None
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS, description=(
        "Latest observations of the object's state, following the Kubernetes condition conventions."))


class ExecutionPlan(Model):
    """ExecutionPlan asks the execplanner operator to run one task (a container, a Helm chart or a
    Jupyter notebook, which may be a workshop of identical notebook sessions booked together)
    with a given amount of cores, memory and GPUs for a given time, either as soon as possible or
    inside one of the given start windows. The operator proposes offers, books one (holding the
    capacity), and runs the task at the booked time as a TaskRun. It is the Kubernetes form of an
    IVOA ExecutionBroker offer set."""
    spec: PlanSpec
    status: PlanStatus | None = None
