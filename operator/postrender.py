"""helm's post-renderer for chart tasks: `python -m execplanner.operator.postrender CONFIG`
reads the rendered manifests on stdin and writes them back, changed, on stdout. CONFIG is a
JSON file the operator writes for the install (`config_for`).

Every object gets the plan's labels (plan UID, plan name) and an owner reference to the plan
(the garbage collector removes what helm uninstall missed). Every pod template gets, so that
kube-scheduler enforces the booking as for container tasks:

- the task PriorityClass, replacing the chart's;
- a first init container that waits for the booked start (children.waiter), and the
  start-at annotation: made `lead` seconds early, the pods hold the booking until then;
- the plan-UID, plan-name, role=task and workload labels, and the plan's pod labels and
  annotations (podLabels, podAnnotations);
- pinning to the booked placement: a required nodeAffinity term `kubernetes.io/hostname In
  <the nodes the workload's pods were booked on>` (ANDed into the chart's own terms). When a
  workload's pods were booked on several nodes, the same number on each, a topology spread
  constraint (maxSkew 1 over those nodes, DoNotSchedule) makes the scheduler put exactly that
  many on each. Placements with unequal counts per node (rare: the engine puts alike pods
  on the best-fit nodes) confine the pods to the booked nodes but cannot fix how many land
  on each; the calendar then sees a pod outside its booking as "capacity taken by others";
- the plan's nodeSelector and tolerations, and the operator's task tolerations.
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from execplanner.api import labels
from execplanner.cluster.charts import HOSTNAME, parse_manifests, pod_template, workload_id

WAITER_REQUESTS = {"cpu": "1m", "memory": "8Mi"}
CLUSTER_SCOPED = {"Namespace", "Node", "PersistentVolume", "StorageClass", "PriorityClass", "ClusterRole",
                  "ClusterRoleBinding", "CustomResourceDefinition", "MutatingWebhookConfiguration",
                  "ValidatingWebhookConfiguration", "APIService", "IngressClass", "RuntimeClass", "CSIDriver",
                  "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def workload_label(obj: Mapping[str, Any]) -> str:
    """A label value naming the workload: "<kind>-<name>", at most 63 characters."""
    value = re.sub(r"[^a-z0-9.-]+", "-", workload_id(obj).replace("/", "-").lower())
    return value[:63].strip("-.") or "workload"


def placement_by_workload(placements: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """From the booking's placements ({"pod": "Deployment/web#0", "node": ...}): how many of
    each workload's pods were booked on each node."""
    out: dict[str, dict[str, int]] = {}
    for p in placements:
        pod = p.get("pod")
        if not pod:
            continue
        wid = str(pod).rsplit("#", 1)[0]
        per_node = out.setdefault(wid, {})
        per_node[p["node"]] = per_node.get(p["node"], 0) + 1
    return out


def config_for(plan: Mapping[str, Any], placements: Iterable[Mapping[str, Any]], *, priority_class: str,
               tolerations: Iterable[Mapping[str, Any]] = (), node_selector: Mapping[str, str] | None = None,
               pod_labels: Mapping[str, str] | None = None,
               pod_annotations: Mapping[str, str] | None = None, start: int | None = None,
               waiter_image: str = "") -> dict[str, Any]:
    """What the post-renderer needs to know, from the plan and its booking; with `start`,
    every pod waits for it in an init container (`children.waiter`)."""
    # Imported here: keeps the post-renderer's own imports small.
    from .children import child_name, owner_ref, waiter, waiting_annotations
    meta = plan["metadata"]
    placements = list(placements)
    plan_labels = {labels.PLAN_UID: meta["uid"], labels.PLAN_NAME: child_name(meta["name"])}
    return {
        "namespace": meta["namespace"],
        "labels": plan_labels,
        "podLabels": {**(pod_labels or {}), **plan_labels, labels.ROLE: labels.ROLE_TASK},
        "podAnnotations": {**(pod_annotations or {}), **(waiting_annotations(start) if start is not None else {})},
        # Small requests of its own: the pod's effective requests stay the chart's.
        "waiter": waiter(start, waiter_image, WAITER_REQUESTS) if start is not None else None,
        "priorityClassName": priority_class,
        "tolerations": list(tolerations),
        "nodeSelector": dict(node_selector or {}),
        "placement": placement_by_workload(placements),
        "nodes": sorted({p["node"] for p in placements}),
        "owner": {**owner_ref(plan), "controller": False},
    }


def _pin(spec: dict[str, Any], nodes: list[str]) -> None:
    affinity = spec.setdefault("affinity", {}) or {}
    spec["affinity"] = affinity
    node_affinity = affinity.setdefault("nodeAffinity", {}) or {}
    affinity["nodeAffinity"] = node_affinity
    required = node_affinity.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {}) or {}
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    ours = {"key": HOSTNAME, "operator": "In", "values": nodes}
    terms = required.get("nodeSelectorTerms") or [{}]
    # Terms are ORed and expressions inside a term ANDed: our constraint goes into every term.
    required["nodeSelectorTerms"] = [{**t, "matchExpressions": [*(t.get("matchExpressions") or []), ours]}
                                     for t in terms]


def _pod(template: dict[str, Any], obj: Mapping[str, Any], cfg: Mapping[str, Any]) -> None:
    meta = template.setdefault("metadata", {}) or {}
    template["metadata"] = meta
    wlabel = workload_label(obj)
    meta["labels"] = {**(meta.get("labels") or {}), **cfg["podLabels"], labels.WORKLOAD: wlabel}
    if cfg.get("podAnnotations"):
        meta["annotations"] = {**(meta.get("annotations") or {}), **cfg["podAnnotations"]}
    spec = template.setdefault("spec", {})
    if cfg.get("waiter"):
        spec["initContainers"] = [cfg["waiter"], *(spec.get("initContainers") or [])]
    spec["priorityClassName"] = cfg["priorityClassName"]
    spec.pop("priority", None)  # admission sets it from the class; a stale number is refused
    if cfg.get("nodeSelector"):
        spec["nodeSelector"] = {**(spec.get("nodeSelector") or {}), **cfg["nodeSelector"]}
    extra = [t for t in cfg.get("tolerations") or [] if t not in (spec.get("tolerations") or [])]
    if extra:
        spec["tolerations"] = [*(spec.get("tolerations") or []), *extra]
    per_node: dict[str, int] = (cfg.get("placement") or {}).get(workload_id(obj)) or {}
    nodes = sorted(per_node) or list(cfg.get("nodes") or [])
    if not nodes:
        return
    _pin(spec, nodes)
    counts = set(per_node.values())
    if obj.get("kind") != "DaemonSet" and len(per_node) > 1 and len(counts) == 1:
        spec["topologySpreadConstraints"] = [*(spec.get("topologySpreadConstraints") or []), {
            "maxSkew": 1, "topologyKey": HOSTNAME, "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {labels.PLAN_UID: cfg["labels"][labels.PLAN_UID],
                                              labels.WORKLOAD: wlabel}}}]


def apply(manifests: Iterable[dict[str, Any]], cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The manifests with the plan's labels, owner, priority and pinning (changed in place)."""
    out = []
    for obj in manifests:
        meta = obj.setdefault("metadata", {}) or {}
        obj["metadata"] = meta
        meta["labels"] = {**(meta.get("labels") or {}), **cfg["labels"]}
        if obj.get("kind") not in CLUSTER_SCOPED and cfg.get("owner"):
            refs = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != cfg["owner"]["uid"]]
            meta["ownerReferences"] = [*refs, cfg["owner"]]
        template = pod_template(obj)
        if template is not None:
            _pod(template, obj, cfg)
        out.append(obj)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m execplanner.operator.postrender CONFIG.json < manifests > manifests", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        cfg = json.load(f)
    try:
        manifests = parse_manifests(sys.stdin.read())
    except yaml.YAMLError as e:
        print(f"execplanner post-renderer: the chart rendered invalid YAML: {e}", file=sys.stderr)
        return 1
    sys.stdout.write(yaml.safe_dump_all(apply(manifests, cfg), sort_keys=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
