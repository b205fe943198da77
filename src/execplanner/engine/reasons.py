"""Why something does not fit, in a form a person can act on (and a program can read)."""
from __future__ import annotations

from dataclasses import dataclass

from execplanner.api.units import format_cpu, format_instant, format_memory

from .resources import NAMES, Resources


@dataclass(frozen=True)
class Reason:
    kind: str  # capacity | filter | quota | nodes | window | conflict
    message: str
    resource: str | None = None  # cpu | memory | gpu | ephemeral | pods
    needed: int | None = None  # internal units (millicores, bytes, count)
    available: int | None = None
    node: str | None = None
    namespace: str | None = None
    at: int | None = None  # epoch seconds, when the reason is about an instant

    def __str__(self) -> str:
        return self.message


def amount(resource: str, value: int) -> str:
    """A human amount: "32 cores", "500m cores", "8Gi", "2 GPUs"."""
    if resource == "cpu":
        text = format_cpu(value)
        return f"{text} core" if text == "1" else f"{text} cores"
    if resource in ("memory", "ephemeral"):
        return format_memory(value)
    if resource == "gpu":
        return f"{value} GPU" if value == 1 else f"{value} GPUs"
    return f"{value} pods" if value != 1 else "1 pod"


def span(start: int, end: int) -> str:
    return f"{format_instant(start)}–{format_instant(end)}"


def shortfall_reasons(need: Resources, free: Resources, node: str, start: int, end: int,
                      prefix: str = "") -> list[Reason]:
    """One reason per resource `node` is short of, over [start, end)."""
    out = []
    for r, name in enumerate(NAMES):
        if need[r] > free[r]:
            have = max(0, free[r])
            out.append(Reason(
                "capacity",
                f"{prefix}{name}: needs {amount(name, need[r])}, the best node ({node}) has "
                f"{amount(name, have)} free over {span(start, end)}",
                resource=name, needed=need[r], available=have, node=node, at=start))
    return out


def quota_reason(namespace: str, resource: str, booked: int, limit: int, need: int, at: int) -> Reason:
    return Reason(
        "quota",
        f"over quota: namespace {namespace} has {amount(resource, booked)} booked at {format_instant(at)}, "
        f"limit {amount(resource, limit)}, this needs {amount(resource, need)} more",
        resource=resource, needed=need, available=max(0, limit - booked), namespace=namespace, at=at)


def shortness(need: Resources, free: Resources, scale: Resources) -> tuple[int, float]:
    """How far a node is from fitting: (resources short, summed relative shortfall). Smaller is closer."""
    count = 0
    rel = 0.0
    for r in range(5):
        if need[r] > free[r]:
            count += 1
            rel += (need[r] - max(0, free[r])) / max(1, scale[r])
    return count, rel
