"""An ExecutionPlan's spec read as an engine Request: the one translation, shared by the
operator (booking) and the planner (checking what it is about to create)."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from execplanner.api.plan import PlanSpec
from execplanner.api.units import (MAX_INSTANT, UnitError, format_instant, parse_count, parse_interval, task_cores,
                                   task_duration, task_memory)

from .filters import toleration_from_dict
from .fit import PodRequest
from .offers import Range, Request
from .resources import Resources


def session_pod(session: int) -> str:
    """The engine's (and status.booking.placements') name of a notebook session's pod."""
    return f"session-{session}"


def plan_request(spec: PlanSpec, extra_tolerations: Sequence[Mapping[str, Any]] = (),
                 pods: Sequence[PodRequest] | None = None) -> Request:
    """The engine's view of a plan: a flexible single pod from spec.resources, or, for a chart,
    the fixed pod set `pods` (its footprint). An interactive notebook's pod is "session-1"; a
    workshop (spec.sessions > 1) is the fixed set of its sessions' identical pods, each of the
    resources' minimum, so that all are placed for the whole booking or none. Raises
    UnitError naming the field."""
    duration = _range(spec.schedule.duration, task_duration, "spec.schedule.duration")
    windows = tuple(parse_interval(w, f"spec.schedule.start[{i}]") for i, w in enumerate(spec.schedule.start))
    for i, (_, last_start) in enumerate(windows):
        if last_start + duration.max > MAX_INSTANT:
            raise UnitError(f"spec.schedule.start[{i}]", f"a booking starting in it could end after "
                                                         f"{format_instant(MAX_INSTANT)}, the last instant there is")
    tolerations = tuple(toleration_from_dict(t) for t in [*spec.tolerations, *extra_tolerations])
    r = spec.resources
    if r is None and pods is None:
        raise UnitError("spec.resources", "is required unless executable.type is a Helm chart")
    if r is not None:  # units checked for charts too (there they are caps)
        cpu = _range(r.cores, task_cores, "spec.resources.cores")
        memory = _range(r.memory, task_memory, "spec.resources.memory")
        gpu = _range(r.gpus, parse_count, "spec.resources.gpus") if r.gpus else Range(0, 0)
    if pods is None and spec.sessions > 1:
        each = Resources(cpu.min, memory.min, gpu.min, 0, 1)
        pods = [PodRequest(session_pod(i), each, dict(spec.node_selector), tolerations)
                for i in range(1, spec.sessions + 1)]
    if pods is not None:
        return Request(duration=duration, windows=windows or None, node_selector=dict(spec.node_selector),
                       tolerations=tolerations, pods=tuple(pods))
    name = session_pod(1) if spec.executable.is_notebook and not spec.executable.is_batch else "main"
    return Request(cpu=cpu, memory=memory, gpu=gpu, duration=duration, windows=windows or None,
                   node_selector=dict(spec.node_selector), tolerations=tolerations, name=name)


def check_units(spec: PlanSpec) -> None:
    """Raises UnitError naming the field when a quantity, duration or window cannot be read."""
    plan_request(spec, pods=() if spec.executable.is_helm else None)


def _range(value: Any, parse: Callable[[Any, str], int], field: str) -> Range:
    low = parse(value.min, f"{field}.min")
    high = low if value.max is None else parse(value.max, f"{field}.max")
    if high < low:
        raise UnitError(f"{field}.max", f"must not be less than {field}.min")
    return Range(low, high)
