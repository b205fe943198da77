"""What the operator creates for a plan, as manifests: placeholder pods, the TaskRun and the
task's Job. Pure builders: the one place each object is shaped.

Everything carries the plan's UID label (found again after a restart, and counted by the
engine against the plan's own booking) and an owner reference, so Kubernetes' garbage
collector removes it with its owner even when the operator is down.
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from execplanner.planner.engine import Resources, format_cpu, format_memory
from execplanner.planner.engine.resources import GPU as GPU_RESOURCE

from . import labels
from .models import PlanSpec
from .settings import Settings

API_VERSION = "execplanner.io/v1alpha1"
HOSTNAME = "kubernetes.io/hostname"
TASK_CONTAINER = "task"


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


def placeholder_name(plan_name: str, index: int) -> str:
    return child_name(plan_name, f"-hold-{index}", limit=253)


def placeholder_pod(plan: Mapping[str, Any], spec: PlanSpec, index: int, node: str, vector: Resources,
                    settings: Settings) -> dict[str, Any]:
    """Holds `vector` on `node` at a priority above ordinary workloads, until the task's pod
    (higher still) preempts it."""
    name = placeholder_name(plan["metadata"]["name"], index)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": plan["metadata"]["namespace"],
                     "labels": plan_labels(plan, labels.ROLE_PLACEHOLDER), "ownerReferences": [owner_ref(plan)]},
        "spec": {
            "containers": [{"name": "hold", "image": settings.placeholder_image,
                            "resources": {"requests": requests_of(vector), "limits": requests_of(vector)}}],
            "priorityClassName": settings.hold_priority_class,
            "terminationGracePeriodSeconds": 0,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            **_pinning(spec, node, settings),
        },
    }


def taskrun(plan: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskRun the operator creates at the booking's start (a user may create one first)."""
    meta = plan["metadata"]
    return {"apiVersion": API_VERSION, "kind": "TaskRun",
            "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                         "labels": plan_labels(plan, labels.ROLE_TASK), "ownerReferences": [owner_ref(plan)]},
            "spec": {"planRef": meta["name"]}}


def job(plan: Mapping[str, Any], spec: PlanSpec, run: Mapping[str, Any], node: str, vector: Resources,
        deadline_seconds: int, settings: Settings) -> dict[str, Any]:
    """The container task as a batch/v1 Job: requests = limits = the booking, pinned to the
    booked node, above the placeholders' priority, stopped by the deadline at the latest."""
    exe = spec.executable
    pod_labels = {**exe.pod_labels, **plan_labels(plan, labels.ROLE_TASK)}
    container: dict[str, Any] = {
        "name": TASK_CONTAINER, "image": exe.image,
        "resources": {"requests": requests_of(vector), "limits": requests_of(vector)},
        "securityContext": {"privileged": False, "allowPrivilegeEscalation": False},
    }
    if exe.command:
        container["command"] = list(exe.command)
    if exe.args:
        container["args"] = list(exe.args)
    if exe.env:
        container["env"] = [{"name": e.name, "value": e.value} for e in exe.env]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": child_name(run["metadata"]["name"]), "namespace": plan["metadata"]["namespace"],
                     "labels": plan_labels(plan, labels.ROLE_TASK), "ownerReferences": [owner_ref(run)]},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": max(1, deadline_seconds),
            "template": {
                "metadata": {"labels": pod_labels, "annotations": dict(exe.pod_annotations) or None},
                "spec": {"containers": [container], "restartPolicy": "Never",
                         "priorityClassName": settings.task_priority_class,
                         "terminationGracePeriodSeconds": 10, **_pinning(spec, node, settings)},
            },
        },
    }
