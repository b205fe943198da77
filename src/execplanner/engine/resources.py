"""The resource vector and how Kubernetes computes a pod's effective requests."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from execplanner.api.units import UnitError, parse_count, parse_cpu, parse_memory

GPU = "nvidia.com/gpu"
NAMES = ("cpu", "memory", "gpu", "ephemeral", "pods")


class Resources(NamedTuple):
    """Plain ints: millicores, bytes, GPUs (nvidia.com/gpu), bytes of ephemeral-storage, pods.

    A NamedTuple keeps it immutable, hashable and cheap in the hot loops."""

    cpu: int = 0
    memory: int = 0
    gpu: int = 0
    ephemeral: int = 0
    pods: int = 0

    def __add__(self, other: Resources) -> Resources:  # type: ignore[override]
        return Resources(self[0] + other[0], self[1] + other[1], self[2] + other[2], self[3] + other[3], self[4] + other[4])

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self[0] - other[0], self[1] - other[1], self[2] - other[2], self[3] - other[3], self[4] - other[4])

    def fits(self, capacity: Resources) -> bool:
        """True when every component is within `capacity`."""
        return (self[0] <= capacity[0] and self[1] <= capacity[1] and self[2] <= capacity[2]
                and self[3] <= capacity[3] and self[4] <= capacity[4])

    def shortfall(self, available: Resources) -> Resources:
        """How much of each resource is missing to fit into `available` (0 where it fits)."""
        return Resources(*(max(0, need - have) for need, have in zip(self, available)))

    def maximum(self, other: Resources) -> Resources:
        return Resources(*(max(a, b) for a, b in zip(self, other)))

    def minimum(self, other: Resources) -> Resources:
        return Resources(*(min(a, b) for a, b in zip(self, other)))

    def is_nonnegative(self) -> bool:
        return min(self) >= 0


ZERO = Resources()
ONE_POD = Resources(pods=1)


def total(vectors: Iterable[Resources]) -> Resources:
    cpu = memory = gpu = eph = pods = 0
    for v in vectors:
        cpu += v[0]
        memory += v[1]
        gpu += v[2]
        eph += v[3]
        pods += v[4]
    return Resources(cpu, memory, gpu, eph, pods)


def resources_from_map(values: Mapping[str, Any] | None, field: str) -> Resources:
    """A Kubernetes resource map ({"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": 1,
    "ephemeral-storage": "20Gi", "pods": "110"}) -> Resources. Other keys are ignored."""
    if not values:
        return ZERO
    get = values.get
    return Resources(
        cpu=parse_cpu(get("cpu", 0), f"{field}.cpu"),
        memory=parse_memory(get("memory", 0), f"{field}.memory"),
        gpu=parse_count(get(GPU, 0), f"{field}.{GPU}"),
        ephemeral=parse_memory(get("ephemeral-storage", 0), f"{field}.ephemeral-storage"),
        pods=parse_count(get("pods", 0), f"{field}.pods"),
    )


def _container_requests(container: Mapping[str, Any], field: str) -> Resources:
    resources = container.get("resources") or {}
    # Kubernetes defaults a missing request to the limit (for that resource only).
    merged = dict(resources.get("limits") or {})
    merged.update(resources.get("requests") or {})
    vector = resources_from_map(merged, field)
    return vector._replace(pods=0)


def pod_requests(spec: Mapping[str, Any], field: str = "spec") -> Resources:
    """A pod's effective requests, computed as the kube-scheduler does (resourcehelper.PodRequests):
    app containers plus sidecars (init containers with restartPolicy Always) run together; a
    regular init container runs alone with the sidecars started before it; the pod needs the
    larger of the two, per resource; plus spec.overhead. `pods` is 1."""
    containers = spec.get("containers") or []
    app = total(_container_requests(c, f"{field}.containers[{i}]") for i, c in enumerate(containers))
    sidecars = ZERO
    init_peak = ZERO
    for i, c in enumerate(spec.get("initContainers") or []):
        need = _container_requests(c, f"{field}.initContainers[{i}]")
        if c.get("restartPolicy") == "Always":
            app = app + need
            sidecars = sidecars + need
            init_peak = init_peak.maximum(sidecars)
        else:
            init_peak = init_peak.maximum(need + sidecars)
    effective = app.maximum(init_peak)
    overhead = spec.get("overhead")
    if overhead:
        effective = effective + resources_from_map(overhead, f"{field}.overhead")._replace(pods=0)
    return effective._replace(pods=1)


def require_nonnegative(vector: Resources, field: str) -> None:
    if not vector.is_nonnegative():
        raise UnitError(field, f"{vector} has negative components")
