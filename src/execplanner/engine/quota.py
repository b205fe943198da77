"""Per-namespace quota: the namespace's bookings, summed at any instant, stay within it."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from execplanner.api.units import parse_count, parse_cpu, parse_memory

from .resources import GPU, Resources
from .timeline import INF

UNLIMITED = INF  # a limit no sum of bookings reaches


def quota_vector(cpu: int | None = None, memory: int | None = None, gpu: int | None = None) -> Resources:
    """A quota as a vector; None (and every other resource) means unlimited."""
    return Resources(
        UNLIMITED if cpu is None else cpu,
        UNLIMITED if memory is None else memory,
        UNLIMITED if gpu is None else gpu,
        UNLIMITED,
        UNLIMITED,
    )


def quota_from_resourcequota(obj: Mapping[str, Any]) -> Resources:
    """A Kubernetes ResourceQuota's spec.hard -> quota vector. Only requests.cpu,
    requests.memory and requests.nvidia.com/gpu count (bookings are requests); the bare
    cpu/memory keys are the same thing in Kubernetes and are read when requests.* is absent."""
    hard = ((obj.get("spec") or {}).get("hard")) or {}
    field = "spec.hard"

    def pick(*keys: str) -> tuple[str, Any] | None:
        for key in keys:
            if key in hard:
                return key, hard[key]
        return None

    cpu = pick("requests.cpu", "cpu")
    memory = pick("requests.memory", "memory")
    gpu = pick(f"requests.{GPU}")
    return quota_vector(
        None if cpu is None else parse_cpu(cpu[1], f"{field}.{cpu[0]}"),
        None if memory is None else parse_memory(memory[1], f"{field}.{memory[0]}"),
        None if gpu is None else parse_count(gpu[1], f"{field}.{gpu[0]}"),
    )
