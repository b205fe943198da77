"""What the benchmarks share: percentiles, times, extra kwok nodes, a fresh namespace, watches."""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from kubernetes import client, watch


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile, or None (JSON null, where NaN would not be JSON) when nothing was measured."""
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else None


def step_p99(earlier: Mapping[str, float], later: Mapping[str, float]) -> float | None:
    """p99 of the time from one step to the next, over the names both saw."""
    return pct([later[n] - earlier[n] for n in later if n in earlier], 0.99)


class PodTimes:
    """When a watch first saw each pod (by a name the caller picks) created, bound and Running."""

    def __init__(self) -> None:
        self.created: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}

    def seen(self, name: str, pod: dict) -> None:
        now = time.time()
        self.created.setdefault(name, now)
        if pod["spec"].get("nodeName"):
            self.bound.setdefault(name, now)
        if (pod.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(name, now)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_nodes(core: client.CoreV1Api, count: int, label: str, prefix: str = "kwok-bench") -> list[str]:
    """`count` extra kwok nodes (16 cores, 64Gi) labelled `label=true`, Ready when this returns."""
    res = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    names = [f"{prefix}-{i}" for i in range(count)]

    def one(name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                             "labels": {"type": "kwok", label: "true", "kubernetes.io/hostname": name}},
                "status": {"capacity": res, "allocatable": res}}
        try:
            core.create_node(body)
        except client.ApiException as e:
            if e.status != 409:
                raise
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(one, names))
    deadline = time.monotonic() + 60 + count / 5
    while time.monotonic() < deadline:
        nodes = core.list_node(label_selector=f"{label}=true").items
        ready = sum(any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []) for n in nodes)
        if ready >= count:
            return names
        time.sleep(1)
    raise RuntimeError("the bench nodes did not become Ready")


def fresh_namespace(core: client.CoreV1Api, name: str) -> None:
    """Delete the namespace left by an earlier run (waiting for it to go), then create it."""
    try:
        core.delete_namespace(name)
        while True:
            core.read_namespace(name)
            time.sleep(1)
    except client.ApiException:
        pass
    core.create_namespace({"metadata": {"name": name}})


def teardown(core: client.CoreV1Api, custom: client.CustomObjectsApi, namespace: str, label: str,
             operator=None, wait_s: float = 300) -> None:
    """Remove what a benchmark made, whatever state it is in; every step runs even if one fails.

    Plans carry the operator's finalizer, so they are deleted while it still runs (it releases
    their holds); any plan still there after `wait_s` (or with no operator) loses its finalizers,
    so the namespace can go. A crashed bench must not leave a cluster that `make test` trips on.
    """
    import sys
    group, version, plural = "execplanner.io", "v1alpha1", "executionplans"

    def step(what: str, fn) -> None:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - clean-up goes on; say what failed
            print(f"# clean-up: {what} failed: {e}", file=sys.stderr)

    def remaining(limit: int = 500) -> list[dict]:
        return custom.list_namespaced_custom_object(group, version, namespace, plural, limit=limit)["items"]

    def delete_with_operator() -> None:
        custom.delete_collection_namespaced_custom_object(group, version, namespace, plural,
                                                          _request_timeout=120)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and remaining(1):
            time.sleep(2)

    def strip_finalizers() -> None:
        while items := [p for p in remaining() if p["metadata"].get("finalizers")]:
            def strip(p: dict) -> None:
                try:
                    custom.patch_namespaced_custom_object(group, version, namespace, plural, p["metadata"]["name"],
                                                          {"metadata": {"finalizers": None}})
                except client.ApiException as e:
                    if e.status != 404:
                        raise
            with ThreadPoolExecutor(16) as pool:
                list(pool.map(strip, items))

    if operator is not None and operator.alive():
        step("deleting the plans", delete_with_operator)
    if operator is not None:
        step("stopping the operator", operator.stop)
    step("removing finalizers", strip_finalizers)
    step("deleting the namespace", lambda: core.delete_namespace(namespace))
    step("deleting the nodes", lambda: core.delete_collection_node(label_selector=f"{label}=true"))


def follow(stop: threading.Event, list_fn, *args, on_event: Callable[[dict], None], **kwargs) -> threading.Thread:
    """Watch in a thread until `stop`: `on_event(object)` for each event, resuming where it
    was when the stream ends (from now after an error). Events stay plain dicts: a consumer
    slower than the API server's watch cache holds up everyone's events of that kind (the
    cacher blocks on a full watcher before it drops it), and a bench would measure its own lag."""
    def run() -> None:
        version = None
        while not stop.is_set():
            try:
                for ev in watch.Watch().stream(list_fn, *args, timeout_seconds=60, resource_version=version,
                                               allow_watch_bookmarks=True, deserialize=False, **kwargs):
                    version = ev["object"]["metadata"]["resourceVersion"]
                    if ev["type"] != "BOOKMARK":
                        on_event(ev["object"])
                    if stop.is_set():
                        return
            except Exception as e:  # noqa: BLE001  (a benchmark must not lose its watch)
                version = None
                print(f"# watch restarted after {type(e).__name__}: {e}", file=sys.stderr)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread
