"""What the operator creates for a plan, as manifests: the TaskRun, the container task's pod,
and a notebook task's pods, Services, token Secrets and result ConfigMap. Pure builders: the
one place each object is shaped.

Everything carries the plan's UID label (found again after a restart, and counted by the
engine against the plan's own booking) and an owner reference, so Kubernetes' garbage
collector removes it with its owner even when the operator is down.
"""
from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

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


# -- notebook tasks --------------------------------------------------------------------------

NOTEBOOK_PORT = 8888
TOKEN_KEY = "token"
# Each server fetches the notebook into its home and serves it; the token comes from the
# session's Secret (jupyter reads JUPYTER_TOKEN). Everything the plan gives reaches the shell
# as environment variables, never as text of the script. A notebook that cannot be fetched
# leaves an empty server, not a failed session.
FETCH = ("python -c 'import os, urllib.request as u; "
         "u.urlretrieve(os.environ[\"NOTEBOOK_LOCATION\"], os.environ[\"NOTEBOOK_FILE\"])'")
SERVER_SCRIPT = "\n".join((
    'cd "${HOME:-/tmp}" 2>/dev/null || cd /tmp',
    f'{FETCH} || echo "execplanner: could not fetch $NOTEBOOK_LOCATION" >&2',
    f'exec jupyter lab --no-browser --ServerApp.ip=0.0.0.0 --ServerApp.port={NOTEBOOK_PORT} '
    '--ServerApp.root_dir="$PWD"'))
# Batch: run it top to bottom; the executed notebook is the container's whole standard output
# (its log, which the operator keeps as the result); nbconvert's own chatter goes to standard
# error only when it fails.
BATCH_SCRIPT = "\n".join((
    "set -e",
    "mkdir -p /tmp/execplanner && cd /tmp/execplanner",
    FETCH,
    'jupyter nbconvert --to notebook --execute --stdout "$NOTEBOOK_FILE" 2>nbconvert.log '
    "|| { cat nbconvert.log >&2; exit 1; }"))


def notebook_file(location: str) -> str:
    """The file name a notebook is saved as: the last part of its URL's path, if it is a plain
    .ipynb name, else notebook.ipynb (also the key of the batch result)."""
    name = posixpath.basename(unquote(urlsplit(location).path))
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.ipynb", name) else "notebook.ipynb"


def session_name(plan_name: str, session: int, suffix: str = "") -> str:
    """A session's pod, Service ("<plan>-session-<n>") and Secret (+ "-token") name: a DNS-1035
    label, as a Service's name must be (a plan's name may have dots or start with a digit: then
    it is rewritten and given a hash, so two plans never share one)."""
    base = plan_name
    if not re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", base):
        digest = hashlib.sha256(plan_name.encode()).hexdigest()[:8]
        base = f"nb-{re.sub('[^a-z0-9-]', '-', plan_name).strip('-')}-{digest}"
    return child_name(base, f"-session-{session}{suffix}")


def session_url(plan: Mapping[str, Any], session: int) -> str:
    meta = plan["metadata"]
    return f"http://{session_name(meta['name'], session)}.{meta['namespace']}.svc:{NOTEBOOK_PORT}/"


def _notebook_container(spec: PlanSpec, image: str, script: str, requests: dict[str, str],
                        token_secret: str | None) -> dict[str, Any]:
    exe = spec.executable
    env = [{"name": "NOTEBOOK_LOCATION", "value": exe.location or ""},
           {"name": "NOTEBOOK_FILE", "value": notebook_file(exe.location or "")}]
    if token_secret:
        env.append({"name": "JUPYTER_TOKEN", "valueFrom": {"secretKeyRef": {"name": token_secret, "key": TOKEN_KEY}}})
    env += [{"name": e.name, "value": e.value} for e in exe.env]
    container: dict[str, Any] = {
        "name": TASK_CONTAINER, "image": image, "command": ["sh", "-c", script], "env": env,
        "resources": {"requests": requests, "limits": requests},
        "securityContext": {"privileged": False, "allowPrivilegeEscalation": False},
    }
    if token_secret:
        container["ports"] = [{"name": "http", "containerPort": NOTEBOOK_PORT, "protocol": "TCP"}]
        container["readinessProbe"] = {"httpGet": {"path": "/api", "port": NOTEBOOK_PORT}, "periodSeconds": 5}
    return container


def _notebook_pod(plan: Mapping[str, Any], spec: PlanSpec, name: str, extra_labels: dict[str, str],
                  container: dict[str, Any], node: str, start: int, end: int, now: int, settings: Settings,
                  restart: str) -> dict[str, Any]:
    exe = spec.executable
    requests = container["resources"]["requests"]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": plan["metadata"]["namespace"],
                     "labels": {**exe.pod_labels, **plan_labels(plan, labels.ROLE_TASK), **extra_labels},
                     "annotations": {**exe.pod_annotations, **waiting_annotations(start, end)},
                     "ownerReferences": [owner_ref(plan)]},
        "spec": {"initContainers": [waiter(start, settings.waiter_image, {k: requests[k] for k in ("cpu", "memory")})],
                 "containers": [container], "restartPolicy": restart,
                 "activeDeadlineSeconds": max(1, end - now),
                 "priorityClassName": settings.task_priority_class,
                 # The notebook runs its user's code: no API credentials, no other services' addresses.
                 "automountServiceAccountToken": False, "enableServiceLinks": False,
                 "terminationGracePeriodSeconds": 10, **_pinning(spec, node, settings)},
    }


def session_pod(plan: Mapping[str, Any], spec: PlanSpec, session: int, node: str, vector: Resources, start: int,
                end: int, now: int, settings: Settings) -> dict[str, Any]:
    """An interactive notebook session's server, made `lead` before the start like a
    container task's pod (requests = limits = the session's booking, pinned, at the task
    priority, waiting in `waiter`, stopped at the end by activeDeadlineSeconds). A crashed
    server is restarted (OnFailure); one its user shuts down stays down."""
    name = session_name(plan["metadata"]["name"], session)
    container = _notebook_container(spec, spec.executable.image or settings.notebook_image, SERVER_SCRIPT,
                                    requests_of(vector), token_secret=session_name(plan["metadata"]["name"], session,
                                                                                   "-token"))
    return _notebook_pod(plan, spec, name, {labels.SESSION: str(session)}, container, node, start, end, now, settings,
                         "OnFailure")


def batch_pod(plan: Mapping[str, Any], spec: PlanSpec, run_name: str, node: str, vector: Resources, start: int,
              end: int, now: int, settings: Settings) -> dict[str, Any]:
    """A batch notebook's pod: the container task's pod, running the notebook top to bottom."""
    container = _notebook_container(spec, spec.executable.image or settings.notebook_image, BATCH_SCRIPT,
                                    requests_of(vector), token_secret=None)
    return _notebook_pod(plan, spec, child_name(run_name), {}, container, node, start, end, now, settings, "Never")


def _owned_by_pod(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A session's Service and Secret belong to its pod: they go with it (at the booking's end,
    or with the plan, which owns the pod)."""
    meta = pod["metadata"]
    return [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]}]


def session_service(plan: Mapping[str, Any], session: int, pod: Mapping[str, Any]) -> dict[str, Any]:
    meta = plan["metadata"]
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": session_name(meta["name"], session), "namespace": meta["namespace"],
                         "labels": {**plan_labels(plan, "notebook"), labels.SESSION: str(session)},
                         "ownerReferences": _owned_by_pod(pod)},
            "spec": {"type": "ClusterIP",
                     "selector": {labels.PLAN_UID: meta["uid"], labels.SESSION: str(session)},
                     "ports": [{"name": "http", "port": NOTEBOOK_PORT, "targetPort": NOTEBOOK_PORT,
                                "protocol": "TCP"}]}}


def session_secret(plan: Mapping[str, Any], session: int, pod: Mapping[str, Any], token: str) -> dict[str, Any]:
    """The session's access token, readable only where the plan's Secrets are (its namespace)."""
    meta = plan["metadata"]
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": session_name(meta["name"], session, "-token"), "namespace": meta["namespace"],
                         "labels": {**plan_labels(plan, "notebook"), labels.SESSION: str(session)},
                         "ownerReferences": _owned_by_pod(pod)},
            "stringData": {TOKEN_KEY: token}}


def result_name(plan_name: str) -> str:
    return child_name(plan_name, "-result", 253)


def result_config_map(plan: Mapping[str, Any], key: str, notebook: str) -> dict[str, Any]:
    """A batch notebook's result: the executed notebook, owned by the plan."""
    meta = plan["metadata"]
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": result_name(meta["name"]), "namespace": meta["namespace"],
                         "labels": plan_labels(plan, "result"), "ownerReferences": [owner_ref(plan)]},
            "data": {key: notebook}}
