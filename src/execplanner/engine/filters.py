"""Node filters as the kube-scheduler applies them: node selector, taints and tolerations."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

# PreferNoSchedule only affects scoring, so it never filters a node out.
HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})


class Taint(NamedTuple):
    key: str
    value: str = ""
    effect: str = "NoSchedule"

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


class Toleration(NamedTuple):
    key: str = ""
    operator: str = "Equal"  # Equal | Exists
    value: str = ""
    effect: str = ""  # empty matches every effect

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key  # an empty key with Exists tolerates everything
        return self.key == taint.key and self.value == taint.value


def taint_from_dict(obj: Mapping[str, Any]) -> Taint:
    return Taint(str(obj["key"]), str(obj.get("value") or ""), str(obj.get("effect") or "NoSchedule"))


def toleration_from_dict(obj: Mapping[str, Any]) -> Toleration:
    operator = str(obj.get("operator") or "Equal")
    if operator not in ("Equal", "Exists"):
        raise ValueError(f"toleration operator {operator!r} is neither Equal nor Exists")
    return Toleration(str(obj.get("key") or ""), operator, str(obj.get("value") or ""), str(obj.get("effect") or ""))


def hard_taints(taints: Iterable[Taint]) -> tuple[Taint, ...]:
    return tuple(t for t in taints if t.effect in HARD_EFFECTS)


def untolerated(taints: tuple[Taint, ...], tolerations: tuple[Toleration, ...]) -> Taint | None:
    """The first hard taint none of the tolerations tolerates, or None."""
    for taint in taints:
        if not any(tol.tolerates(taint) for tol in tolerations):
            return taint
    return None


def selector_matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    for key, value in selector.items():
        if labels.get(key) != value:
            return False
    return True


class PodFilter(NamedTuple):
    """What a pod asks of a node besides capacity."""

    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()

    @staticmethod
    def of(node_selector: Mapping[str, str] | None, tolerations: Iterable[Toleration] | None) -> PodFilter:
        return PodFilter(tuple(sorted((node_selector or {}).items())), tuple(tolerations or ()))
