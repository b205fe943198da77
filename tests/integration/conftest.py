"""Fixtures for tests against the local control plane (cluster/up.sh).

The cluster is started once per session, or reused when it already runs. If it cannot
be started the session fails: an integration test is never skipped for want of one.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client, config

from . import cluster_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    """Starts (or reuses) the local control plane and returns its admin kubeconfig."""
    proc = subprocess.run([str(ROOT / "cluster" / "up.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(
            "the local control plane could not be started (cluster/up.sh):\n"
            + proc.stdout[-4000:] + proc.stderr[-4000:],
            pytrace=False,
        )
    path = cluster_env.kubeconfig_path()
    os.environ["KUBECONFIG"] = path
    return path


@pytest.fixture(scope="session")
def api(kubeconfig: str) -> client.ApiClient:
    """An admin client for the local cluster."""
    return config.new_client_from_config(config_file=kubeconfig)


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def namespace(core: client.CoreV1Api, request: pytest.FixtureRequest) -> str:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    base = request.node.name.lower().replace("_", "-")
    name = f"t-{base[:40].strip('-')}-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"execplanner.io/test": "true"})))
    # Pods are refused until the controller-manager has made the default service account.
    deadline = time.monotonic() + 30
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except client.ApiException as e:
            if e.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Runs the cluster's own kubectl against the local cluster."""
    return subprocess.run(
        [cluster_env.binary("kubectl"), "--kubeconfig", cluster_env.kubeconfig_path(), *args],
        input=input, capture_output=True, text=True, check=check,
    )


def wait_until(predicate, timeout: float = 30, interval: float = 0.25, what: str = "condition"):
    """Polls predicate() until it returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def priority_level_of(kubeconfig: str) -> tuple[str, str]:
    """The FlowSchema and priority level (names) the API server's Priority and Fairness files
    a request of `kubeconfig`'s identity under (a list of nodes): every response says so in
    its headers."""
    with config.new_client_from_config(config_file=kubeconfig) as api:
        _, _, headers = client.CoreV1Api(api).list_node_with_http_info(limit=1)
    with config.new_client_from_config(config_file=cluster_env.kubeconfig_path()) as api:
        admin = client.FlowcontrolApiserverV1Api(api)
        by_uid = {o.metadata.uid: o.metadata.name for o in admin.list_flow_schema().items}
        levels = {o.metadata.uid: o.metadata.name for o in admin.list_priority_level_configuration().items}
    return (by_uid.get(headers.get("X-Kubernetes-PF-FlowSchema-UID"), "?"),
            levels.get(headers.get("X-Kubernetes-PF-PriorityLevel-UID"), "?"))


@contextmanager
def kwok_nodes(core: client.CoreV1Api, names: list[str], capacity: dict[str, str], *,
               labels: Callable[[int], dict[str, str]] = lambda i: {}, taints: list[dict] = (),
               timeout: float = 60, settle: float = 0.0):
    """Fake (kwok) nodes of `capacity` each, with `labels(i)` (the i-th node's) and `taints`, Ready and
    free of the node controller's not-ready taints when the block begins (then `settle`
    seconds more, for the operator's node watch); deleted when it ends, whatever happened. A
    node left over from an interrupted run is reused with this capacity."""
    for i, name in enumerate(names):
        body = {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                             "labels": {"type": "kwok", "kubernetes.io/hostname": name, **labels(i)}},
                "spec": {"taints": list(taints)}, "status": {"capacity": capacity, "allocatable": capacity}}
        try:
            core.create_node(body)
        except client.ApiException as e:
            if e.status != 409:
                raise
            core.patch_node_status(name, {"status": {"capacity": capacity, "allocatable": capacity}})

    def ready() -> bool:
        nodes = [core.read_node(n) for n in names]
        return all(any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                   and not [t for t in n.spec.taints or [] if t.key.startswith("node.kubernetes.io/")]
                   for n in nodes)
    try:
        wait_until(ready, timeout, what=f"kwok nodes {names} to be Ready")
        time.sleep(settle)
        yield names
    finally:
        for name in names:
            try:
                core.delete_node(name)
            except client.ApiException as e:
                if e.status != 404:
                    raise


# The shared processes and servers: defined in their own modules, registered here so that
# each exists once per session (a fixture imported into several test modules would be made
# once per module: two operators would both act on every plan).
from .chart_repo_fixture import chart_repo  # noqa: E402,F401
from .operator_fixture import operator, operator_kubeconfig, operator_log  # noqa: E402,F401
from .planner_fixture import jwks_key, planner, tokens  # noqa: E402,F401
