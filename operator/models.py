"""Pydantic models of the ExecutionPlan and TaskRun specs, and the plan's engine request.

The CRD schema already refuses bad input at apply time; these models are the operator's
typed view of what passed, plus the one translation of a plan into an engine Request.
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from execplanner.planner.charts import ChartRef
from execplanner.planner.engine import (PodRequest, Range, Request, UnitError, parse_count, parse_cpu, parse_duration,
                                        parse_interval, parse_memory, toleration_from_dict)

CONTAINER_TYPES = {
    "docker-container",
    "uri://docker-container",
    "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml",
}
HELM_TYPES = {"helm-chart", "uri://kubernetes-helm"}


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class EnvVar(_Model):
    name: str
    value: str = ""


class Executable(_Model):
    type: str
    image: str | None = None
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    privileged: bool = False
    pod_labels: dict[str, str] = Field(default_factory=dict, alias="podLabels")
    pod_annotations: dict[str, str] = Field(default_factory=dict, alias="podAnnotations")
    chart: str | None = None
    repository: str | None = None
    version: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_container(self) -> bool:
        return self.type in CONTAINER_TYPES

    @property
    def is_helm(self) -> bool:
        return self.type in HELM_TYPES

    def chart_ref(self) -> ChartRef:
        return ChartRef(self.chart or "", self.repository or None, self.version or None)


class MinMax(_Model):
    min: int | str
    max: int | str | None = None


class Resources(_Model):
    cores: MinMax
    memory: MinMax
    gpus: MinMax | None = None


class Schedule(_Model):
    duration: MinMax
    start: list[str] = Field(default_factory=list)


class AcceptPolicy(str, Enum):
    FIRST = "First"
    MANUAL = "Manual"


class PlanSpec(_Model):
    executable: Executable
    resources: Resources | None = None  # required for containers; optional caps for a chart
    schedule: Schedule
    offers: int = 1
    accept_policy: AcceptPolicy = Field(AcceptPolicy.FIRST, alias="acceptPolicy")
    accepted_offer: str | None = Field(None, alias="acceptedOffer")
    cancel: bool = False
    suspend: bool = False
    rejected_offers: tuple[str, ...] = Field((), alias="rejectedOffers")
    destruction: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict, alias="nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list)

    def request(self, extra_tolerations: list[dict[str, Any]] = (),
                pods: tuple[PodRequest, ...] | None = None) -> Request:
        """The engine's view of this plan: a flexible single pod from spec.resources, or, for a
        chart, the fixed pod set `pods` (its footprint). Raises UnitError naming the field."""
        duration = _range(self.schedule.duration, parse_duration, "spec.schedule.duration")
        windows = tuple(parse_interval(w, f"spec.schedule.start[{i}]") for i, w in enumerate(self.schedule.start))
        tolerations = tuple(toleration_from_dict(t) for t in [*self.tolerations, *extra_tolerations])
        r = self.resources
        if r is None and pods is None:
            raise UnitError("spec.resources", "is required unless executable.type is a Helm chart")
        if r is not None:  # units checked for charts too (there they are caps)
            cpu = _range(r.cores, parse_cpu, "spec.resources.cores")
            memory = _range(r.memory, parse_memory, "spec.resources.memory")
            gpu = _range(r.gpus or MinMax(min=0), parse_count, "spec.resources.gpus")
        if pods is not None:
            return Request(duration=duration, windows=windows or None, node_selector=dict(self.node_selector),
                           tolerations=tolerations, pods=tuple(pods))
        return Request(cpu=cpu, memory=memory, gpu=gpu, duration=duration, windows=windows or None,
                       node_selector=dict(self.node_selector), tolerations=tolerations)

    def check_units(self) -> None:
        """Raises UnitError naming the field when a quantity, duration or window cannot be read."""
        self.request(pods=() if self.executable.is_helm else None)


def _range(value: MinMax, parse, field: str) -> Range:
    low = parse(value.min, f"{field}.min")
    high = low if value.max is None else parse(value.max, f"{field}.max")
    if high < low:
        raise UnitError(f"{field}.max", f"must not be less than {field}.min")
    return Range(low, high)


class TaskRunSpec(_Model):
    plan_ref: str = Field(alias="planRef")
    abort: bool = False
    run_id: str | None = Field(None, alias="runId")
