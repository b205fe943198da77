"""What the benchmarks share: percentiles, times, extra kwok nodes, a fresh namespace."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from kubernetes import client


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3) if values else float("nan")


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
