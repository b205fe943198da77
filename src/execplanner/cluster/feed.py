"""Feeding the engine from Kubernetes objects: one place that reads nodes and pods.

Pure functions of the API objects (as dicts, the shape watches deliver), so the operator
and the HTTP service read live state the same way and tests need no cluster.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from execplanner.api.labels import PLAN_UID

from execplanner.engine import (Calendar, Resources, UnitError, parse_instant, pod_requests, quota_from_resourcequota,
                     resources_from_map, taint_from_dict)

# Pods in these phases hold nothing: the scheduler no longer counts them either.
FINISHED = ("Succeeded", "Failed")


def pod_key(pod: Mapping[str, Any]) -> str:
    meta = pod["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def node_ready(node: Mapping[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def apply_node(cal: Calendar, node: Mapping[str, Any]) -> list[str]:
    """Adds or updates a node from its API object; returns the bookings this revoked."""
    meta, spec, status = node["metadata"], node.get("spec") or {}, node.get("status") or {}
    return cal.set_node(
        meta["name"],
        resources_from_map(status.get("allocatable") or {}, f"node {meta['name']} status.allocatable"),
        labels=meta.get("labels") or {},
        taints=[taint_from_dict(t) for t in spec.get("taints") or []],
        ready=node_ready(node),
        unschedulable=bool(spec.get("unschedulable")),
    )


def delete_node(cal: Calendar, node: Mapping[str, Any]) -> list[str]:
    return cal.remove_node(node["metadata"]["name"])


def apply_pod(cal: Calendar, pod: Mapping[str, Any]) -> list[str]:
    """Adds, updates or (once finished or not yet bound) forgets a pod; returns revoked bookings.

    Only pods bound to a node hold capacity; ours carry their plan's UID, which is also the
    id of the plan's booking, so the engine does not count them twice. Ours are made a lead
    before the booking's start and hold its capacity from their creation on."""
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName")
    if not node or status.get("phase") in FINISHED:
        return cal.remove_pod(pod_key(pod))
    booking = ((meta.get("labels") or {}).get(PLAN_UID)) or None
    since = _instant(meta.get("creationTimestamp")) if booking else None
    return cal.set_pod(pod_key(pod), node, pod_requests(spec), booking_id=booking, since=since)


def _instant(value: str | None) -> int | None:
    try:
        return parse_instant(value, "metadata.creationTimestamp") if value else None
    except UnitError:
        return None


def delete_pod(cal: Calendar, pod: Mapping[str, Any]) -> list[str]:
    return cal.remove_pod(pod_key(pod))


def apply_quota(cal: Calendar, quotas: dict[str, dict[str, Resources | None]], quota: Mapping[str, Any],
                deleted: bool = False) -> list[str]:
    """A namespace's bookings stay within the tightest of its ResourceQuotas. `quotas` (namespace
    -> quota name -> vector) is the caller's memory of them; returns the bookings this revoked."""
    meta = quota["metadata"]
    per_ns = quotas.setdefault(meta["namespace"], {})
    if deleted:
        per_ns.pop(meta["name"], None)
    else:
        per_ns[meta["name"]] = quota_from_resourcequota(quota)
    tightest = None
    for v in per_ns.values():
        if v is not None:
            tightest = v if tightest is None else tightest.minimum(v)
    return cal.set_quota(meta["namespace"], tightest)
