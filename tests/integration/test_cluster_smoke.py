"""The local control plane does what execplanner relies on: real scheduling by capacity,
priority preemption, the Job controller, helm, CRDs. Nothing here is mocked."""
from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.utils.quantity import parse_quantity

from . import cluster_env
from .conftest import kubectl, wait_until

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PAUSE = "registry.k8s.io/pause:3.10"


def pod(name: str, cpu: str, memory: str = "64Mi", node: str | None = None, priority_class: str | None = None,
        annotations: dict | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, annotations=annotations),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="main", image=PAUSE, resources=client.V1ResourceRequirements(
                requests={"cpu": cpu, "memory": memory}))],
            node_selector={"kubernetes.io/hostname": node} if node else None,
            priority_class_name=priority_class,
            termination_grace_period_seconds=0,
        ),
    )


def phase(core, ns, name) -> str:
    return core.read_namespaced_pod(name, ns).status.phase


def free_cpu_millis(core: client.CoreV1Api, node: str) -> int:
    """Allocatable CPU of a node less the requests of the pods bound to it."""
    alloc = parse_quantity(core.read_node(node).status.allocatable["cpu"])
    used = 0
    for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items:
        if p.status.phase in ("Succeeded", "Failed"):
            continue
        for c in p.spec.containers:
            used += parse_quantity((c.resources.requests or {}).get("cpu", "0"))
    return int((alloc - used) * 1000)


def test_kwok_nodes_ready_with_configured_allocatable(core):
    shape = cluster_env.node_shape()
    nodes = {n.metadata.name: n for n in core.list_node(label_selector="type=kwok").items}
    cpu_nodes = [f"kwok-node-{i}" for i in range(int(shape["nodes"]))]
    gpu_nodes = [f"kwok-gpu-{i}" for i in range(int(shape["gpu_nodes"]))]
    assert set(cpu_nodes + gpu_nodes) <= set(nodes), sorted(nodes)
    for name in cpu_nodes + gpu_nodes:
        node = nodes[name]
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True", f"{name} is not Ready"
        alloc = node.status.allocatable
        assert parse_quantity(alloc["cpu"]) == parse_quantity(shape["node_cpu"])
        assert parse_quantity(alloc["memory"]) == parse_quantity(shape["node_memory"])
        assert int(alloc["pods"]) == int(shape["node_pods"])
        gpus = int(alloc.get("nvidia.com/gpu", "0"))
        assert gpus == (int(shape["gpu_per_node"]) if name in gpu_nodes else 0)


def test_pod_with_requests_is_scheduled_and_running(core, namespace):
    core.create_namespaced_pod(namespace, pod("small", cpu="1", memory="1Gi"))
    wait_until(lambda: phase(core, namespace, "small") == "Running", what="pod Running")
    p = core.read_namespaced_pod("small", namespace)
    assert p.spec.node_name.startswith("kwok-")
    scheduled = {c.type: c.status for c in p.status.conditions}["PodScheduled"]
    assert scheduled == "True"


def test_pod_larger_than_any_node_stays_pending_unschedulable(core, namespace):
    too_big = int(parse_quantity(cluster_env.node_shape()["node_cpu"])) * 4
    core.create_namespaced_pod(namespace, pod("huge", cpu=str(too_big)))

    def unschedulable():
        conds = core.read_namespaced_pod("huge", namespace).status.conditions or []
        return next((c for c in conds if c.type == "PodScheduled" and c.reason == "Unschedulable"), None)

    cond = wait_until(unschedulable, what="PodScheduled=False/Unschedulable")
    assert cond.status == "False"
    assert "Insufficient cpu" in cond.message
    assert phase(core, namespace, "huge") == "Pending"


@pytest.fixture
def priority_classes(api):
    sched = client.SchedulingV1Api(api)
    suffix = uuid.uuid4().hex[:6]
    names = {"low": f"smoke-low-{suffix}", "high": f"smoke-high-{suffix}"}
    for level, value in (("low", 1000), ("high", 100000)):
        sched.create_priority_class(client.V1PriorityClass(metadata=client.V1ObjectMeta(name=names[level]), value=value))
    yield names
    for name in names.values():
        sched.delete_priority_class(name)


def test_higher_priority_pod_preempts_lower_on_full_node(core, namespace, priority_classes):
    node = "kwok-node-0"
    alloc = int(parse_quantity(core.read_node(node).status.allocatable["cpu"]) * 1000)
    free = free_cpu_millis(core, node)
    assert free >= 2000, f"{node} has only {free}m free; another test left pods behind"
    # Together the two ask for half a core more than the node has, whatever else runs
    # there: the high-priority pod can only be placed by preempting the low one.
    low = free - 500
    core.create_namespaced_pod(namespace, pod("low", cpu=f"{low}m", node=node, priority_class=priority_classes["low"]))
    wait_until(lambda: phase(core, namespace, "low") == "Running", what="low-priority pod Running")
    high = alloc - low + 500
    core.create_namespaced_pod(namespace, pod("high", cpu=f"{high}m", node=node, priority_class=priority_classes["high"]))

    def low_gone():
        try:
            p = core.read_namespaced_pod("low", namespace)
        except client.ApiException as e:
            return e.status == 404
        return p.metadata.deletion_timestamp is not None

    wait_until(low_gone, timeout=60, what="the low-priority pod to be preempted")
    wait_until(lambda: phase(core, namespace, "high") == "Running", timeout=60, what="high-priority pod Running")
    assert core.read_namespaced_pod("high", namespace).spec.node_name == node


def test_job_completes_through_the_controller_manager(api, namespace):
    batch = client.BatchV1Api(api)
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(annotations={"pod-complete.stage.kwok.x-k8s.io/delay": "2s"}),
        spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
            name="main", image=PAUSE, resources=client.V1ResourceRequirements(requests={"cpu": "100m"}))]),
    )
    batch.create_namespaced_job(namespace, client.V1Job(
        metadata=client.V1ObjectMeta(name="once"), spec=client.V1JobSpec(template=template, backoff_limit=0)))

    def complete():
        conds = batch.read_namespaced_job("once", namespace).status.conditions or []
        return any(c.type == "Complete" and c.status == "True" for c in conds)

    wait_until(complete, timeout=60, what="the Job to complete")
    assert batch.read_namespaced_job("once", namespace).status.succeeded == 1


def test_local_helm_chart_installs_and_uninstalls(api, namespace, kubeconfig):
    import subprocess

    helm = [cluster_env.binary("helm"), "--kubeconfig", kubeconfig, "--namespace", namespace]
    chart = str(Path(__file__).parent / "charts" / "hello")
    subprocess.run([*helm, "install", "smoke", chart, "--wait", "--timeout", "60s", "--set", "replicas=2"],
                   check=True, capture_output=True, text=True)
    apps = client.AppsV1Api(api)
    dep = apps.read_namespaced_deployment("smoke-web", namespace)
    assert dep.status.ready_replicas == 2
    releases = json.loads(subprocess.run([*helm, "list", "-o", "json"], check=True, capture_output=True, text=True).stdout)
    assert [r["name"] for r in releases] == ["smoke"]
    subprocess.run([*helm, "uninstall", "smoke", "--wait"], check=True, capture_output=True, text=True)
    with pytest.raises(client.ApiException) as gone:
        apps.read_namespaced_deployment("smoke-web", namespace)
    assert gone.value.status == 404


def test_crds_apply_with_kubectl(kubeconfig):
    crds = sorted((ROOT / "crds").glob("*.yaml"))
    assert crds, "crds/ holds no CRD"
    out = kubectl("apply", "--server-side", "-f", str(ROOT / "crds")).stdout
    assert "executionplans.execplanner.io" in out and "taskruns.execplanner.io" in out
    kubectl("wait", "--for=condition=Established", "--timeout=30s",
            "crd/executionplans.execplanner.io", "crd/taskruns.execplanner.io")
    names = kubectl("api-resources", "--api-group=execplanner.io", "-o", "name").stdout.split()
    assert set(names) == {"executionplans.execplanner.io", "taskruns.execplanner.io"}


FAKE_LOG_LINE = "kwok: fake node, no real process ran"


def running_pod(core, namespace, p: client.V1Pod) -> client.V1Pod:
    core.create_namespaced_pod(namespace, p)
    wait_until(lambda: phase(core, namespace, p.metadata.name) == "Running", what=f"pod {p.metadata.name} Running")
    return core.read_namespaced_pod(p.metadata.name, namespace)


def test_pod_log_through_the_api_server_says_the_node_is_fake(core, namespace):
    """kwok serves the kubelet API; the API server reaches it through the node's address and
    daemon endpoint. Without a Logs object, every container logs cluster/up.sh's default file."""
    p = running_pod(core, namespace, pod("logged", cpu="100m"))
    assert p.spec.node_name.startswith("kwok-")
    text = core.read_namespaced_pod_log("logged", namespace, container="main")
    lines = text.splitlines()
    assert lines[0] == FAKE_LOG_LINE, text
    assert len(lines) == 2 and "cluster/kwok.yaml" in lines[1], text
    # The same through kubectl (GET .../pods/logged/log), with the timestamps of the file.
    out = kubectl("-n", namespace, "logs", "logged", "--timestamps").stdout
    assert out.splitlines()[0].endswith(" " + FAKE_LOG_LINE), out


def test_pod_log_chosen_by_a_kwok_logs_object(api, core, namespace, tmp_path):
    """A kwok.x-k8s.io/v1alpha1 Logs object named like the pod, in its namespace, points its
    containers at files (CRI log format) that the test writes: per container, or by default."""
    main_log, other_log = tmp_path / "main.log", tmp_path / "other.log"
    main_log.write_text("2025-01-01T00:00:00.000000000Z stdout F task started\n"
                        "2025-01-01T00:00:01.000000000Z stderr F task done: 42\n")
    other_log.write_text("2025-01-01T00:00:00.000000000Z stdout F sidecar here\n")
    p = pod("chosen", cpu="100m")
    p.spec.containers.append(client.V1Container(name="sidecar", image=PAUSE))
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", namespace, "logs",
        {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs", "metadata": {"name": "chosen"},
         "spec": {"logs": [{"containers": ["main"], "logsFile": str(main_log)},
                           {"logsFile": str(other_log)}]}})
    running_pod(core, namespace, p)

    def log_of(container):
        try:
            return core.read_namespaced_pod_log("chosen", namespace, container=container)
        except client.ApiException:
            return None

    # kwok learns of the Logs object through a watch: allow it a moment.
    wait_until(lambda: log_of("main") == "task started\ntask done: 42\n", what="main's log from the Logs object")
    assert log_of("sidecar") == "sidecar here\n"
    assert core.read_namespaced_pod_log("chosen", namespace, container="main", tail_lines=1) == "task done: 42\n"
