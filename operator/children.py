"""What the operator creates for a plan, as manifests: the TaskRun and the container task's
pod. Pure builders: the one place each object is shaped.

Everything carries the plan's UID label (found again after a restart, and counted by the
engine against the plan's own booking) and an owner reference, so Kubernetes' garbage
collector removes it with its owner even when the operator is down.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from execplanner.api import labels
from execplanner.api.plan import PlanSpec
from execplanner.engine import Resources, format_cpu, format_instant, format_memory
from execplanner.engine.resources import GPU as GPU_RESOURCE

from .settings import Settings

API_VERSION = "execplanner.io/v1alpha1"
HOSTNAME = "kubernetes.io/hostname"
TASK_CONTAINER = "task"
WAITER_CONTAINER = "wait-for-start"


def child_name(base: str, suffix: str = "", limit: int = 63) -> str:
    """A DNS-1123 name of at most `limit` characters; a long base is cut and given a hash so
    two long plan names never collide."""
    name = f"{base}{suffix}"
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[:limit - len(suffix) - 9].rstrip('-.')}-{digest}{suffix}"


def plan_labels(plan: Mapping[str, Any], role: str) -> dict[str, str]:
    meta = plan["metadata"]
    return {labels.PLAN_UID: meta["uid"], labels.PLAN_NAME: child_name(meta["name"]), labels.ROLE: role}


def owner_ref(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": obj.get("apiVersion", API_VERSION), "kind": obj["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": True}


def requests_of(vector: Resources) -> dict[str, str]:
    out = {"cpu": format_cpu(vector.cpu), "memory": format_memory(vector.memory)}
    if vector.gpu:
        out[GPU_RESOURCE] = str(vector.gpu)
    return out


def _pinning(spec: PlanSpec, node: str, settings: Settings) -> dict[str, Any]:
    return {"nodeSelector": {**spec.node_selector, HOSTNAME: node},
            "tolerations": [*settings.task_tolerations, *spec.tolerations] or None}


def taskrun(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskRun the operator creates with the task's pods (a user may create one first)."""
    meta = plan["metadata"]
    return {"apiVersion": API_VERSION, "kind": "TaskRun",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "labels": plan_labels(plan, labels.ROLE_TASK), "ownerReferences": [owner_ref(plan)]},
            "spec": {"planRef": meta["name"]}}


def waiter(start: int, image: str, requests: dict[str, str]) -> dict[str, Any]:
    """The init container that holds a task's pod until the booked start: the kubelet needs
    nothing from the API server at the start. Its requests are counted by the scheduler as
    the pod's (the larger of init and app containers), so callers give the task's own."""
    return {"name": WAITER_CONTAINER, "image": image,
            "command": ["sh", "-c", 'd=$(( EXECPLANNER_START - $(date +%s) )); if [ "$d" -gt 0 ]; then sleep "$d"; fi'],
            "env": [{"name": "EXECPLANNER_START", "value": str(start)},
                    {"name": "EXECPLANNER_START_AT", "value": format_instant(start)}],
            "resources": {"requests": dict(requests), "limits": dict(requests)},
            "securityContext": {"privileged": False, "allowPrivilegeEscalation": False}}


def waiting_annotations(start: int, end: int | None = None) -> dict[str, str]:
    """What a task pod says of its booking (read by people, and by the local cluster's kwok
    stages in place of the kubelet)."""
    out = {labels.START_AT: format_instant(start)}
    if end is not None:
        out[labels.END_AT] = format_instant(end)
    return out


def task_pod(plan: Mapping[str, Any], spec: PlanSpec, run_name: str, node: str, vector: Resources, start: int,
             end: int, now: int, settings: Settings) -> dict[str, Any]:
    """The container task's pod, made `lead` seconds before the start: requests = limits =
    the booking, pinned to the booked node at the task priority, so from the moment it is
    bound it holds the booked capacity (the scheduler puts nothing else there); it waits for
    the start in `waiter` and is stopped by its kubelet at the booking's end."""
    exe = spec.executable
    requests = requests_of(vector)
    container: dict[str, Any] = {
        "name": TASK_CONTAINER, "image": exe.image,
        "resources": {"requests": requests, "limits": requests},
        "securityContext": {"privileged": False, "allowPrivilegeEscalation": False},
    }
    if exe.command:
        container["command"] = list(exe.command)
    if exe.args:
        container["args"] = list(exe.args)
    if exe.env:
        container["env"] = [{"name": e.name, "value": e.value} for e in exe.env]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": child_name(run_name), "namespace": plan["metadata"]["namespace"],
                     "labels": {**exe.pod_labels, **plan_labels(plan, labels.ROLE_TASK)},
                     "annotations": {**exe.pod_annotations, **waiting_annotations(start, end)},
                     "ownerReferences": [owner_ref(plan)]},
        "spec": {"initContainers": [waiter(start, settings.waiter_image, {k: requests[k] for k in ("cpu", "memory")})],
                 "containers": [container], "restartPolicy": "Never",
                 "activeDeadlineSeconds": max(1, end - now),
                 "priorityClassName": settings.task_priority_class,
                 "terminationGracePeriodSeconds": 10, **_pinning(spec, node, settings)},
    }
