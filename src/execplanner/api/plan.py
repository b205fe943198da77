"""Pydantic models of the ExecutionPlan and TaskRun specs.

The CRD schema already refuses bad input at apply time; these models are the typed view of
what passed, for the operator, the planner and the engine (engine/specs.py reads a spec into
an engine Request).
"""
from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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


class TaskRunSpec(_Model):
    plan_ref: str = Field(alias="planRef")
    abort: bool = False
    run_id: str | None = Field(None, alias="runId")
