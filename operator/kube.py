"""The operator's calls to the API server (async, kubernetes_asyncio): idempotent helpers, so
every reconcile step can be repeated after a crash without harm."""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from execplanner.api.labels import GROUP, VERSION
from execplanner.cluster import kube as cluster_kube

log = logging.getLogger("execplanner.operator.kube")
PLANS, RUNS = "executionplans", "taskruns"

_api: client.ApiClient | None = None


async def connect() -> client.ApiClient:
    """One client for the process (made as the planner makes its own)."""
    global _api
    if _api is None:
        _api = await cluster_kube.connect()
    return _api


def api() -> client.ApiClient:
    if _api is None:
        raise RuntimeError("kube.connect() was not awaited at start-up")
    return _api


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api())


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api())


def batch() -> client.BatchV1Api:
    return client.BatchV1Api(api())


async def _body(resp: Any) -> bytes:
    """The body of a response asked for with _preload_content=False; an error status raises
    (cluster_kube.checked)."""
    resp = await cluster_kube.checked(resp)
    try:
        return await resp.read()
    finally:
        resp.release()


async def create(obj: dict[str, Any]) -> dict[str, Any] | None:
    """Create `obj` (a Pod, Job, TaskRun, or a notebook's Service, Secret or ConfigMap) and
    return it as created; None if it already exists (a repeated step). All but TaskRuns come
    back as plain JSON, without deserialising the whole response into client models (costly
    on the event loop). A Secret's response is not returned: the operator never reads one."""
    ns, kind = obj["metadata"]["namespace"], obj["kind"]
    try:
        if kind == "Pod":
            resp = await core().create_namespaced_pod(ns, obj, _preload_content=False)
        elif kind == "Service":
            resp = await core().create_namespaced_service(ns, obj, _preload_content=False)
        elif kind == "ConfigMap":
            resp = await core().create_namespaced_config_map(ns, obj, _preload_content=False)
        elif kind == "Secret":
            await _body(await core().create_namespaced_secret(ns, obj, _preload_content=False))
            return {"metadata": {"name": obj["metadata"]["name"], "namespace": ns}}
        elif kind == "Job":
            resp = await batch().create_namespaced_job(ns, obj, _preload_content=False)
        elif kind == "TaskRun":
            return await custom().create_namespaced_custom_object(GROUP, VERSION, ns, RUNS, obj)
        else:
            raise ValueError(f"kube.create does not make {kind}")
        return json.loads(await _body(resp))
    except ApiException as e:
        if e.status == 409:
            return None
        raise


async def delete(kind: str, namespace: str, name: str) -> None:
    """Delete, ignoring what is already gone; dependants go in the background."""
    body = client.V1DeleteOptions(propagation_policy="Background", grace_period_seconds=0 if kind == "Pod" else None)
    try:
        if kind == "Pod":
            await core().delete_namespaced_pod(name, namespace, body=body)
        elif kind == "Job":
            await batch().delete_namespaced_job(name, namespace, body=body)
        elif kind == "ExecutionPlan":
            await custom().delete_namespaced_custom_object(GROUP, VERSION, namespace, PLANS, name, body=body)
        else:
            raise ValueError(f"kube.delete does not remove {kind}")
    except ApiException as e:
        if e.status != 404:
            raise


async def pod_meta(namespace: str, name: str) -> dict[str, Any] | None:
    """A pod's metadata (uid, labels), or None if it is gone."""
    try:
        body = json.loads(await _body(await core().read_namespaced_pod(name, namespace, _preload_content=False)))
    except ApiException as e:
        if e.status == 404:
            return None
        raise
    return body["metadata"]


async def pod_log(namespace: str, name: str, container: str, limit_bytes: int) -> bytes | None:
    """The first `limit_bytes` of a container's log, or None if the pod is gone."""
    try:
        return await _body(await core().read_namespaced_pod_log(name, namespace, container=container,
                                                                limit_bytes=limit_bytes, _preload_content=False))
    except ApiException as e:
        if e.status == 404:
            return None
        raise


async def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any] | None:
    """Merge-patch an ExecutionPlan's or TaskRun's status; None if the object is gone."""
    try:
        return await custom().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": status}, _content_type="application/merge-patch+json")
    except ApiException as e:
        if e.status == 404:
            return None
        raise


async def get(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return await custom().get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
    except ApiException as e:
        if e.status == 404:
            return None
        raise


async def patch_meta(plural: str, namespace: str, name: str, meta: dict[str, Any]) -> None:
    await custom().patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, {"metadata": meta},
                                                  _content_type="application/merge-patch+json")



EVENT_POSTERS = 4  # Events posted at once: they repeat what the status says, so in a burst they wait
_events: asyncio.Queue[dict[str, Any]] | None = None
_posters: list[asyncio.Task] = []


def event(obj: Mapping[str, Any], type: str, reason: str, message: str) -> None:
    """Post an Event about `obj` in the background (as kubectl describe shows them), behind the
    writes that decide things; a lost Event is logged, never retried."""
    global _events
    meta = obj["metadata"]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    body = {"metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": obj.get("apiVersion", f"{GROUP}/{VERSION}"),
                               "kind": obj.get("kind", "ExecutionPlan"), "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "type": type, "reason": reason, "message": message[:1024], "count": 1,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "eventTime": None,
            "source": {"component": "execplanner-operator"}, "reportingComponent": "execplanner-operator"}
    if _events is None:
        _events = asyncio.Queue()
        _posters.extend(asyncio.get_running_loop().create_task(_post(_events)) for _ in range(EVENT_POSTERS))
    _events.put_nowait(body)


async def _post(events: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        body = await events.get()
        try:
            await _body(await core().create_namespaced_event(body["metadata"]["namespace"], body,
                                                             _preload_content=False))
        except Exception as e:  # noqa: BLE001
            obj = body["involvedObject"]
            log.warning("event %s on %s/%s not posted: %s", body["reason"], obj["namespace"], obj["name"], e)
