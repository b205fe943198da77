"""The TaskRun: one execution of a booked ExecutionPlan, with the IVOA UWS 1.1 job phases.
`make crds` generates crds/taskruns.execplanner.io.yaml from these models."""
from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from .plan import CONDITIONS, DATE_TIME, OBSERVED_GENERATION, Condition as PlanCondition
from .schema import Model, applied_default, rule, rules


class TaskRunSpec(Model):
    """Which booked plan to run."""
    plan_ref: str = Field(alias="planRef", min_length=1, max_length=253, json_schema_extra=rules(
        rule("self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')",
             expression="'must be the name of an ExecutionPlan (lower-case letters, digits, - and .), not \"' "
                        "+ self + '\"'"),
        rule("self == oldSelf", "planRef cannot be changed; create another TaskRun instead")), description=(
        "Name of the ExecutionPlan (same namespace, phase Booked) whose booking this run executes. Cannot be "
        "changed."))
    run_id: str | None = Field(None, alias="runId", max_length=256, description=(
        "Free label chosen by the client (the UWS runId); not interpreted."))
    abort: bool = Field(False, json_schema_extra=applied_default(**rules(
        rule("!oldSelf || self", "abort cannot be undone once set to true"))), description=(
        "Set to true to stop the run (the UWS PHASE=ABORT); the phase becomes ABORTED. Cannot be undone."))


class UWSPhase(StrEnum):
    """IVOA UWS 1.1 phase: PENDING (accepted, not queued), QUEUED (waiting for the booked start),
    EXECUTING, COMPLETED, ERROR, ABORTED; also HELD (cannot be queued yet), SUSPENDED, UNKNOWN
    and ARCHIVED."""
    PENDING = "PENDING"
    QUEUED = "QUEUED"
    EXECUTING = "EXECUTING"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    ABORTED = "ABORTED"
    HELD = "HELD"
    SUSPENDED = "SUSPENDED"
    UNKNOWN = "UNKNOWN"
    ARCHIVED = "ARCHIVED"


class LogRef(Model):
    """Where the task's log can be read (kubectl logs -n <namespace> <pod> -c <container>)."""
    pod: str | None = Field(None, description="Name of the pod that ran the task.")
    container: str | None = Field(None, description="Name of the container within the pod.")


class Condition(PlanCondition):
    """One condition."""
    type: str = Field(max_length=316, description="Condition type in CamelCase (e.g. Ready, Succeeded).")


class TaskRunStatus(Model):
    """Observed state, written by the operator. Unknown fields are kept (the operator framework
    keeps its own bookkeeping here)."""
    model_config = Model.model_config | {"json_schema_extra": {"x-kubernetes-preserve-unknown-fields": True}}
    phase: UWSPhase | None = None
    start_time: str | None = Field(None, alias="startTime", json_schema_extra=DATE_TIME, description=(
        "When the task started executing (RFC 3339)."))
    end_time: str | None = Field(None, alias="endTime", json_schema_extra=DATE_TIME, description=(
        "When the task stopped (RFC 3339)."))
    exit_code: int | None = Field(None, alias="exitCode", json_schema_extra={"format": "int32"}, description=(
        "Exit code of the task's main container, once it has ended."))
    reason: str | None = Field(None, description=(
        "Machine-readable CamelCase reason for the phase (e.g. Completed, OOMKilled, DeadlineExceeded, Aborted)."))
    message: str | None = Field(None, description=(
        "Human-readable explanation of the phase (for ERROR, the UWS errorSummary message)."))
    log: LogRef | None = None
    observed_generation: int | None = OBSERVED_GENERATION
    conditions: list[Condition] = Field(default_factory=list, json_schema_extra=CONDITIONS, description=(
        "Latest observations of the object's state, following the Kubernetes condition conventions."))


class TaskRun(Model):
    """TaskRun is one execution of a booked ExecutionPlan: the operator creates it (owned by the
    plan) when the booking starts, or a user creates it naming a Booked plan in spec.planRef. Its
    phases are the IVOA UWS 1.1 job phases."""
    spec: TaskRunSpec
    status: TaskRunStatus | None = None
