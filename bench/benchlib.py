"""What the benchmarks share: percentiles, times, extra kwok nodes, a fresh namespace, watches,
kube-apiserver's write counts and a process's CPU."""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families

from execplanner import localrun


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
             operator=None, wait_s: float = 300, *, stop_operator: bool = True, nodes: bool = True) -> None:
    """Remove what a benchmark made, whatever state it is in; every step runs even if one fails.

    Plans carry the operator's finalizer, so they are deleted while it still runs (it releases
    their holds); any plan still there after `wait_s` (or with no operator) loses its finalizers,
    so the namespace can go. A crashed bench must not leave a cluster that `make test` trips on.
    stop_operator=False leaves the operator running and nodes=False the nodes labelled `label`
    (a bench of several parts, clearing one part's namespace before the next).
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
    if operator is not None and stop_operator:
        step("stopping the operator", operator.stop)
    step("removing finalizers", strip_finalizers)
    step("deleting the namespace", lambda: core.delete_namespace(namespace))
    if nodes:
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


def wait_gone(core: client.CoreV1Api, namespace: str, timeout: float = 600) -> bool:
    """Wait until the namespace is gone (deleted and garbage collected: its finalizers have run)
    and no pod of it is left anywhere; False if that took longer than `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except client.ApiException as e:
            if e.status != 404:
                raise
            if not core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={namespace}", limit=1).items:
                return True
        time.sleep(1)
    return False


WRITE_VERBS = frozenset({"POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION"})


def apiserver_writes(api: client.ApiClient) -> dict[str, float]:
    """kube-apiserver's apiserver_request_total (from its /metrics, read with `api`'s
    credentials: the admin's) for the writing verbs, summed by "resource" or
    "resource/subresource", whoever wrote."""
    response = api.call_api(*api.param_serialize("GET", "/metrics", auth_settings=["BearerToken"]),
                            _request_timeout=60)
    response.read()
    if response.status != 200:
        raise RuntimeError(f"GET /metrics answered {response.status}: {response.data[:200]!r}")
    writes: dict[str, float] = {}
    for family in text_string_to_metric_families(response.data.decode()):
        for s in family.samples:
            if s.name == "apiserver_request_total" and s.labels.get("verb") in WRITE_VERBS:
                key = "/".join(filter(None, (s.labels.get("resource"), s.labels.get("subresource"))))
                writes[key] = writes.get(key, 0) + s.value
    return writes


def counter_diff(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    """after - before, by key, without the keys that did not move."""
    diff = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in sorted(diff.items(), key=lambda kv: -kv[1]) if v}


def cpu_seconds(pid: int) -> float:
    """The CPU (user + system) process `pid` has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()  # after the command's name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


# The benchmarks' users: a ServiceAccount that may create and remove plans and Jobs. Never the
# admin's certificate: system:masters is exempt from API Priority and Fairness, which no
# user's requests are, so a flood of creates made as admin would meet no limit at all.
BENCH_USER = ("default", "execplanner-bench-user")
_USER_RBAC = """apiVersion: v1
kind: ServiceAccount
metadata: {{name: {name}, namespace: {namespace}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {name}}}
rules:
  - apiGroups: [execplanner.io]
    resources: [executionplans]
    verbs: [get, list, watch, create, delete]
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [get, list, watch, create, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {name}}}
subjects: [{{kind: ServiceAccount, name: {name}, namespace: {namespace}}}]
"""


def user_api(directory: Path) -> client.ApiClient:
    """A client that acts as the benchmarks' user (BENCH_USER, made if missing)."""
    namespace, name = BENCH_USER
    localrun.kubectl("apply", "-f", "-", input=_USER_RBAC.format(namespace=namespace, name=name))
    return config.new_client_from_config(
        config_file=str(localrun.service_account_kubeconfig(directory, namespace, name)))


def remove_user() -> None:
    namespace, name = BENCH_USER
    localrun.kubectl("delete", "--ignore-not-found", "clusterrolebinding,clusterrole", name)
    localrun.kubectl("delete", "--ignore-not-found", "-n", namespace, "serviceaccount", name)
