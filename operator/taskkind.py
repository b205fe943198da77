"""The one interface the plan's state machine (plans.py) calls for every kind of task.

    admit(plan, spec) -> Request | None   allowlists, sizing; None when it Rejected the plan
    launch(plan, spec, now)               make the task's pods, which hold and wait for the start
                                          (idempotent; raises LaunchFailed when it cannot)
    observe(plan, spec, now) -> Observation   what the watches saw (lifecycle.Task)
    stop(plan)                            stop whatever of it runs (idempotent)
    final_status(plan, spec, completed) -> (fields, note)
                                          status fields the final phase carries (a batch
                                          notebook's result; an interactive one's endpoints
                                          removed) and a note for its message
    cleanup(plan)                         remove what must not outlive the plan's run
"""
from __future__ import annotations

from typing import Any, Protocol

from execplanner.api.plan import PlanSpec
from execplanner.engine import Request

from .container import ContainerTask
from .helmtask import HelmTask
from .lifecycle import LaunchFailed, Observation
from .notebook import BatchNotebookTask, NotebookTask
from .planrecord import Plan

__all__ = ["TaskKind", "LaunchFailed", "kind_of"]


class TaskKind(Protocol):
    async def admit(self, plan: Plan, spec: PlanSpec) -> Request | None: ...
    async def launch(self, plan: Plan, spec: PlanSpec, now: int) -> None: ...
    def observe(self, plan: Plan, spec: PlanSpec, now: int) -> Observation: ...
    async def stop(self, plan: Plan) -> None: ...
    async def final_status(self, plan: Plan, spec: PlanSpec, completed: bool) -> tuple[dict[str, Any], str]: ...
    async def cleanup(self, plan: Plan) -> None: ...


CONTAINER, HELM, NOTEBOOK, BATCH_NOTEBOOK = ContainerTask(), HelmTask(), NotebookTask(), BatchNotebookTask()


def kind_of(spec: PlanSpec) -> TaskKind:
    exe = spec.executable
    if exe.is_helm:
        return HELM
    if exe.is_notebook:
        return BATCH_NOTEBOOK if exe.is_batch else NOTEBOOK
    return CONTAINER
