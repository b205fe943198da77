"""planner.charts: a chart's footprint (every pod it would create, with its effective
requests), release names, chart references, and rendering with the real helm binary."""
from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path

import pytest

from execplanner.cluster import charts
from execplanner.cluster.charts import ChartRef, FootprintError, NodeInfo, footprint, release_name
from execplanner.engine import Resources, Taint, parse_memory

GI = 2**30


def container(name="c", cpu=None, memory=None, limits=None, gpu=None, restart=None):
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory), ("nvidia.com/gpu", gpu)) if v is not None}
    c = {"name": name, "image": "registry.k8s.io/pause:3.10", "resources": {}}
    if requests:
        c["resources"]["requests"] = requests
    if limits:
        c["resources"]["limits"] = limits
    if restart:
        c["restartPolicy"] = restart
    return c


def workload(kind, name, containers, init=(), api="apps/v1", **spec):
    pod = {"containers": list(containers)}
    if init:
        pod["initContainers"] = list(init)
    for key in ("nodeSelector", "tolerations", "restartPolicy"):
        if key in spec:
            pod[key] = spec.pop(key)
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod}
    template = {"metadata": {"labels": {"app": name}}, "spec": pod}
    if kind == "CronJob":
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": {"name": name},
                "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {**spec, "template": template}}}}
    return {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": {**spec, "template": template}}


def by_id(fp):
    return {w.id: w for w in fp.workloads}


NODES = [NodeInfo(f"n{i}", {"kubernetes.io/hostname": f"n{i}", "pool": "a" if i < 2 else "b"}) for i in range(4)]


# -- counting pods ----------------------------------------------------------------------------

def test_replicas_default_to_one_and_zero_is_zero():
    fp = footprint([
        workload("Deployment", "web", [container(cpu="500m", memory="256Mi")], replicas=3),
        workload("Deployment", "one", [container(cpu="1", memory="1Gi")]),
        workload("Deployment", "off", [container(cpu="1", memory="1Gi")], replicas=0),
        workload("ReplicaSet", "rs", [container(cpu="1", memory="1Gi")], replicas=2),
        workload("ReplicationController", "rc", [container(cpu="1", memory="1Gi")], api="v1", replicas=1),
    ])
    w = by_id(fp)
    assert (w["Deployment/web"].pods, w["Deployment/one"].pods, w["Deployment/off"].pods) == (3, 1, 0)
    assert (w["ReplicaSet/rs"].pods, w["ReplicationController/rc"].pods) == (2, 1)
    assert w["Deployment/web"].requests[:2] == (500, 256 * 2**20)
    assert fp.count == 7
    assert fp.total[:2] == (1500 + 1000 + 2000 + 1000, 768 * 2**20 + 4 * GI)


def test_statefulset_counts_its_replicas():
    fp = footprint([workload("StatefulSet", "db", [container(cpu="2", memory="4Gi")], replicas=3,
                             serviceName="db")])
    assert fp.count == 3 and fp.total[:2] == (6000, 12 * GI)
    assert [p.name for p in fp.pod_requests()] == ["StatefulSet/db#0", "StatefulSet/db#1", "StatefulSet/db#2"]


def test_jobs_count_parallelism_capped_by_completions_and_cronjobs_once():
    fp = footprint([
        workload("Job", "wide", [container(cpu="1", memory="1Gi")], api="batch/v1", parallelism=4, completions=10),
        workload("Job", "few", [container(cpu="1", memory="1Gi")], api="batch/v1", parallelism=4, completions=2),
        workload("Job", "plain", [container(cpu="1", memory="1Gi")], api="batch/v1"),
        workload("Job", "held", [container(cpu="1", memory="1Gi")], api="batch/v1", suspend=True),
        workload("CronJob", "nightly", [container(cpu="1", memory="1Gi")], parallelism=2),
    ])
    w = by_id(fp)
    assert [w[k].pods for k in ("Job/wide", "Job/few", "Job/plain", "Job/held", "CronJob/nightly")] == [4, 2, 1, 0, 2]
    assert all(w[k].completes for k in ("Job/wide", "CronJob/nightly"))
    assert any("CronJob/nightly is counted once" in n for n in fp.notes)
    assert any("Job/held is suspended" in n for n in fp.notes)


def test_bare_pods_count_once_and_services_nothing():
    fp = footprint([
        workload("Pod", "once", [container(cpu="1", memory="1Gi")], restartPolicy="Never"),
        workload("Pod", "server", [container(cpu="1", memory="1Gi")]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"a": "b"}},
    ])
    w = by_id(fp)
    assert fp.count == 2 and set(w) == {"Pod/once", "Pod/server"}
    assert w["Pod/once"].completes and not w["Pod/server"].completes


def test_daemonset_one_pod_per_eligible_node_pinned_to_it():
    nodes = [*NODES, NodeInfo("tainted", {"kubernetes.io/hostname": "tainted", "pool": "a"},
                              (Taint("dedicated", "gpu", "NoSchedule"),)),
             NodeInfo("cordon-ish", {"kubernetes.io/hostname": "cordon-ish", "pool": "a"},
                      (Taint("node.kubernetes.io/unschedulable", "", "NoSchedule"),))]
    fp = footprint([workload("DaemonSet", "agent", [container(cpu="100m", memory="64Mi")],
                             nodeSelector={"pool": "a"})], nodes)
    ds = by_id(fp)["DaemonSet/agent"]
    # n0, n1 match the selector; "tainted" is not tolerated; the controller's own toleration
    # covers node.kubernetes.io/unschedulable.
    assert ds.nodes == ("cordon-ish", "n0", "n1") and ds.pods == 3
    pods = fp.pod_requests()
    assert [p.node_selector["kubernetes.io/hostname"] for p in pods] == ["cordon-ish", "n0", "n1"]
    assert all(p.node_selector["pool"] == "a" for p in pods)
    tolerated = footprint([workload("DaemonSet", "agent", [container(cpu="100m", memory="64Mi")],
                                    tolerations=[{"key": "dedicated", "operator": "Exists"}])], nodes)
    assert by_id(tolerated)["DaemonSet/agent"].pods == len(nodes)
    # The plan's own node selector narrows the eligible nodes further.
    narrowed = footprint([workload("DaemonSet", "agent", [container(cpu="100m", memory="64Mi")])], NODES,
                         node_selector={"pool": "b"})
    assert by_id(narrowed)["DaemonSet/agent"].nodes == ("n2", "n3")


def test_init_containers_take_the_larger_of_init_peak_and_app_sum():
    fp = footprint([
        workload("Deployment", "big-init", [container("a", cpu="1", memory="1Gi"), container("b", cpu="1", memory="1Gi")],
                 init=[container("migrate", cpu="4", memory="512Mi")]),
        workload("Deployment", "sidecar", [container("a", cpu="1", memory="1Gi")],
                 init=[container("proxy", cpu="500m", memory="128Mi", restart="Always"),
                       container("setup", cpu="1", memory="256Mi")]),
    ])
    w = by_id(fp)
    assert w["Deployment/big-init"].requests[:2] == (4000, 2 * GI)  # cpu from the init, memory from the sum
    # The sidecar runs beside the app (1.5 cores); the init after it peaks at 0.5 + 1.
    assert w["Deployment/sidecar"].requests[:2] == (1500, GI + 128 * 2**20)


def test_limits_stand_in_for_missing_requests_and_gpus_count():
    fp = footprint([workload("Deployment", "gpu", [container(limits={"cpu": "2", "memory": "8Gi",
                                                                      "nvidia.com/gpu": "1"})])])
    assert by_id(fp)["Deployment/gpu"].requests[:3] == (2000, 8 * GI, 1)


def test_limitrange_default_fills_missing_requests():
    defaults = charts.limitrange_defaults([
        {"spec": {"limits": [{"type": "Pod", "max": {"cpu": "64"}},
                             {"type": "Container", "defaultRequest": {"cpu": "250m"}, "default": {"cpu": "1", "memory": "512Mi"}}]}},
        {"spec": {"limits": [{"type": "Container", "defaultRequest": {"memory": "1Gi"}}]}},
    ])
    assert defaults == {"cpu": "250m", "memory": "512Mi"}  # defaultRequest first, then default; the first LimitRange wins
    fp = footprint([workload("Deployment", "bare", [container("x"), container("y", cpu="1")], replicas=2)],
                   limitrange_default=defaults)
    assert by_id(fp)["Deployment/bare"].requests[:2] == (250 + 1000, 2 * 512 * 2**20)


def test_missing_requests_are_refused_naming_workload_and_container():
    manifests = [workload("Deployment", "ok", [container(cpu="1", memory="1Gi")]),
                 workload("StatefulSet", "cache", [container("redis", cpu="1")], serviceName="c")]
    with pytest.raises(FootprintError, match=r"StatefulSet/cache: container redis has no memory request.*LimitRange"):
        footprint(manifests)
    with pytest.raises(FootprintError, match=r"StatefulSet/cache: container redis has no memory request "
                                             r"\(every container must state them\)"):
        footprint(manifests, limitrange_default={"memory": "1Gi"}, refuse_missing=True)
    assert footprint(manifests, limitrange_default={"memory": "1Gi"}).total[:2] == (2000, 2 * GI)
    with pytest.raises(FootprintError, match="Deployment/x: container c has no cpu and memory request"):
        footprint([workload("Deployment", "x", [container()])])


def test_bad_quantities_name_the_workload():
    with pytest.raises(FootprintError, match="Deployment/x"):
        footprint([workload("Deployment", "x", [container(cpu="lots", memory="1Gi")])])


def test_plan_selector_and_tolerations_join_every_pod():
    fp = footprint([workload("Deployment", "web", [container(cpu="1", memory="1Gi")], replicas=2,
                             nodeSelector={"disk": "ssd"})])
    pods = fp.pod_requests({"zone": "z1"}, [{"key": "batch", "operator": "Exists"}])
    assert [dict(p.node_selector) for p in pods] == [{"zone": "z1", "disk": "ssd"}] * 2
    assert all(any(t.key == "batch" for t in p.tolerations) for p in pods)
    assert all(p.requests.pods == 1 for p in pods)


def test_footprint_survives_the_status_round_trip():
    fp = footprint([
        workload("Deployment", "web", [container(cpu="1500m", memory="1536Mi")], replicas=2,
                 tolerations=[{"key": "a", "operator": "Exists"}]),
        workload("DaemonSet", "agent", [container(cpu="100m", memory="64Mi")]),
        workload("Job", "run", [container(cpu="3", memory="10G", gpu="1")], api="batch/v1"),
    ], NODES)
    again = charts.Footprint.from_status(fp.to_status())
    assert again == fp
    assert again.pod_requests() == fp.pod_requests()
    status = fp.to_status()
    assert (status["pods"], status["cores"], status["gpus"]) == (7, "6400m", 1)
    assert parse_memory(status["memory"], "m") == 2 * 1536 * 2**20 + 4 * 64 * 2**20 + 10 * 10**9


def test_images_and_foreign_namespaces():
    dep = workload("Deployment", "web", [container("a")], init=[container("i")])
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/org/web:1"
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "kube-system"}}
    same = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "y", "namespace": "mine"}}
    assert charts.images([dep, other]) == [("Deployment/web container i", "registry.k8s.io/pause:3.10"),
                                           ("Deployment/web container a", "ghcr.io/org/web:1")]
    assert charts.foreign_namespaces([dep, other, same], "mine") == ["ConfigMap/x (namespace kube-system)"]


# -- names and references -------------------------------------------------------------------------

def test_release_name_is_stable_short_and_dns_safe():
    uid = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    name = release_name("gaia-dr4.run_1", uid)
    assert name == release_name("gaia-dr4.run_1", uid)
    assert name.startswith("xp-gaia-dr4-run-1-") and len(name) <= 53
    long = release_name("a" * 253, uid)
    assert len(long) == 53 and long.endswith(name[-8:])
    assert release_name("a" * 253, "other-uid") != long  # different plans, different releases
    import re
    for n in (name, long, release_name("---", uid)):
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n), n


def test_chart_references_become_helm_arguments():
    assert ChartRef("podinfo", "https://stefanprodan.github.io/podinfo", "6.7.1").helm_args() == [
        "podinfo", "--repo", "https://stefanprodan.github.io/podinfo", "--version", "6.7.1"]
    assert ChartRef("oci://ghcr.io/org/charts/app", None, "1.0.0").kind == "oci"
    oci = ChartRef("app", "oci://ghcr.io/org/charts/", None)
    assert (oci.kind, oci.helm_args()) == ("oci", ["oci://ghcr.io/org/charts/app"])
    assert ChartRef("https://example.org/app-1.0.0.tgz").kind == "url"
    assert ChartRef("/charts/app").kind == "path"


# -- rendering with the real helm -------------------------------------------------------------------

def _helm() -> str:
    from execplanner import localrun
    try:
        path = localrun.cluster().helm
    except Exception:  # noqa: BLE001
        path = ""
    if not os.path.exists(path):
        pytest.fail("helm is not built (run `make build`, or `make test`, which builds it): charts render through it")
    return path


def _chart(tmp_path: Path, template: str) -> Path:
    (tmp_path / "templates").mkdir(parents=True)
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: tiny\nversion: 0.1.0\n")
    (tmp_path / "values.yaml").write_text("replicas: 1\n")
    (tmp_path / "templates" / "x.yaml").write_text(textwrap.dedent(template))
    return tmp_path


def test_render_runs_helm_template_with_values(tmp_path: Path):
    cfg = charts.ChartSettings(helm=_helm(), helm_home=str(tmp_path / "home"))
    chart = _chart(tmp_path / "tiny", """\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: {{ .Release.Name }}-web, namespace: {{ .Release.Namespace }}}
        spec:
          replicas: {{ .Values.replicas }}
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: web, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: "2", memory: 1Gi}}}]
        """)
    manifests = asyncio.run(charts.render(ChartRef(str(chart)), {"replicas": 3}, "xp-a-1234", "ns1", cfg=cfg))
    assert [(m["kind"], m["metadata"]["name"], m["metadata"]["namespace"]) for m in manifests] == [
        ("Deployment", "xp-a-1234-web", "ns1")]
    assert footprint(manifests).total[:2] == (6000, 3 * GI)


def test_render_errors_carry_helms_message(tmp_path: Path):
    cfg = charts.ChartSettings(helm=_helm(), helm_home=str(tmp_path / "home"))
    chart = _chart(tmp_path / "tiny", "size: {{ required \"values.size is required\" .Values.size }}\n")
    with pytest.raises(charts.RenderError, match="values.size is required"):
        asyncio.run(charts.render(ChartRef(str(chart)), {}, "xp-a-1234", "ns1", cfg=cfg))
    with pytest.raises(charts.RenderError, match="not found|no such file|path"):
        asyncio.run(charts.render(ChartRef(str(tmp_path / "nowhere")), {}, "xp-a-1234", "ns1", cfg=cfg))


def test_a_missing_helm_binary_is_a_clear_error(tmp_path: Path):
    cfg = charts.ChartSettings(helm=str(tmp_path / "no-helm"), helm_home=str(tmp_path / "home"))
    with pytest.raises(charts.RenderError, match="cannot run helm"):
        asyncio.run(charts.render(ChartRef("x"), {}, "xp-a", "ns", cfg=cfg))


def test_resources_is_engine_vector():
    assert isinstance(footprint([workload("Pod", "p", [container(cpu="1", memory="1Gi")])]).total, Resources)
