"""The post-renderer for chart tasks (operator/postrender.py) and the helm task's pure checks."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml

from execplanner.api import labels
from execplanner.operator import helmtask, postrender
from execplanner.api.plan import PlanSpec
from execplanner.cluster.charts import footprint
from execplanner.engine import Calendar, Resources
from execplanner.engine.specs import check_units

PLAN = {"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan",
        "metadata": {"name": "spread", "namespace": "ns1", "uid": "uid-1"}}
PLACEMENTS = [
    {"pod": "Deployment/web#0", "node": "n1", "cores": "10", "memory": "1Gi", "gpus": 0},
    {"pod": "Deployment/web#1", "node": "n2", "cores": "10", "memory": "1Gi", "gpus": 0},
    {"pod": "Deployment/db#0", "node": "n3", "cores": "10", "memory": "1Gi", "gpus": 0},
    {"pod": "StatefulSet/odd#0", "node": "n1", "cores": "1", "memory": "1Gi", "gpus": 0},
    {"pod": "StatefulSet/odd#1", "node": "n1", "cores": "1", "memory": "1Gi", "gpus": 0},
    {"pod": "StatefulSet/odd#2", "node": "n2", "cores": "1", "memory": "1Gi", "gpus": 0},
]


def deployment(name, **pod_spec):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "x"}], **pod_spec}}}}


def config(**over):
    return postrender.config_for(PLAN, PLACEMENTS, priority_class="execplanner-task",
                                 tolerations=[{"key": "batch", "operator": "Exists"}], node_selector={"zone": "z1"},
                                 pod_labels={"team": "gaia"}, pod_annotations={"note": "hi"}, **over)


def test_config_counts_each_workloads_pods_per_node():
    cfg = config()
    assert cfg["placement"] == {"Deployment/web": {"n1": 1, "n2": 1}, "Deployment/db": {"n3": 1},
                                "StatefulSet/odd": {"n1": 2, "n2": 1}}
    assert cfg["nodes"] == ["n1", "n2", "n3"]
    assert cfg["podLabels"] == {"team": "gaia", labels.PLAN_UID: "uid-1", labels.PLAN_NAME: "spread",
                                labels.ROLE: labels.ROLE_TASK}
    assert cfg["owner"] == {"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan", "name": "spread",
                            "uid": "uid-1", "controller": False}


def test_every_object_gets_the_plans_labels_and_owner():
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"}, "spec": {}}
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}
    out = postrender.apply([svc, ns], config())
    assert out[0]["metadata"]["labels"] == {labels.PLAN_UID: "uid-1", labels.PLAN_NAME: "spread"}
    assert out[0]["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert "ownerReferences" not in out[1]["metadata"]  # cluster-scoped: no namespaced owner


def test_pod_templates_get_priority_labels_pinning_and_spread():
    web, db = deployment("web", priority=5, priorityClassName="chart-own"), deployment("db")
    out = postrender.apply([web, db], config())
    spec = out[0]["spec"]["template"]["spec"]
    meta = out[0]["spec"]["template"]["metadata"]
    assert spec["priorityClassName"] == "execplanner-task" and "priority" not in spec
    assert meta["labels"] == {"app": "web", "team": "gaia", labels.PLAN_UID: "uid-1", labels.PLAN_NAME: "spread",
                              labels.ROLE: labels.ROLE_TASK, labels.WORKLOAD: "deployment-web"}
    assert meta["annotations"] == {"note": "hi"}
    assert out[0]["spec"]["selector"] == {"matchLabels": {"app": "web"}}  # selectors are immutable: untouched
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1", "n2"]}]}]
    # one pod on each of two nodes: the spread makes the scheduler keep it so
    assert spec["topologySpreadConstraints"] == [{
        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {labels.PLAN_UID: "uid-1", labels.WORKLOAD: "deployment-web"}}}]
    assert spec["nodeSelector"] == {"zone": "z1"}
    assert spec["tolerations"] == [{"key": "batch", "operator": "Exists"}]
    db_spec = out[1]["spec"]["template"]["spec"]
    assert db_spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["n3"]
    assert "topologySpreadConstraints" not in db_spec  # one node: the affinity alone pins it


def test_pinning_is_anded_into_the_charts_own_node_affinity_terms():
    own = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}
    out = postrender.apply([deployment("db", affinity=own)], config())
    terms = out[0]["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    ours = {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n3"]}
    assert terms == [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}, ours]},
                     {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}],
                      "matchExpressions": [ours]}]


def test_uneven_placements_are_confined_without_a_spread_and_unknown_workloads_to_all_nodes():
    odd = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "odd"},
           "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    job = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "later"},
           "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}}}}
    out = postrender.apply([odd, job], config())
    spec = out[0]["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in spec
    expr = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert expr[0]["matchExpressions"][0]["values"] == ["n1", "n2"]
    cron = out[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron["priorityClassName"] == "execplanner-task"
    assert cron["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["n1", "n2", "n3"]


def test_runs_as_helm_runs_it(tmp_path):
    """helm pipes the manifests through `python -m execplanner.operator.postrender CONFIG`."""
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config()))
    text = yaml.safe_dump_all([deployment("web"), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}])
    done = subprocess.run([sys.executable, "-m", "execplanner.operator.postrender", str(path)], input=text,
                          capture_output=True, text=True, check=True)
    out = list(yaml.safe_load_all(done.stdout))
    assert [o["kind"] for o in out] == ["Deployment", "ConfigMap"]
    assert out[0]["spec"]["template"]["spec"]["priorityClassName"] == "execplanner-task"
    bad = subprocess.run([sys.executable, "-m", "execplanner.operator.postrender", str(path)], input="a: [",
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "invalid YAML" in bad.stderr


# -- helmtask's pure checks ---------------------------------------------------------------------

def chart_spec(**resources):
    body = {"executable": {"type": "helm-chart", "chart": "c", "repository": "http://127.0.0.1:1"},
            "schedule": {"duration": {"min": "1h"}}}
    if resources:
        body["resources"] = resources
    return PlanSpec.model_validate(body)


def pods(n, cpu="10", memory="16Gi"):
    return footprint([{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "w"},
                       "spec": {"replicas": n, "template": {"spec": {"containers": [
                           {"name": "c", "image": "x", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}}}}])


def test_resources_are_optional_caps_for_charts():
    fp = pods(3)
    assert helmtask.over_caps(chart_spec(), fp) is None
    assert helmtask.over_caps(chart_spec(cores={"min": 1, "max": 30}, memory={"min": "1Gi", "max": "48Gi"}), fp) is None
    why = helmtask.over_caps(chart_spec(cores={"min": 20}, memory={"min": "1Gi", "max": "32Gi"}), fp)
    assert why == ("the chart's 3 pod(s) need 30 cores of cpu, over spec.resources.cores (20 cores at most); "
                   "48Gi of memory, over spec.resources.memory (32Gi at most)")
    check_units(chart_spec())  # no resources: fine for a chart


def test_cluster_shortfall_names_resource_and_amount():
    cal = Calendar()
    for i in range(4):
        cal.set_node(f"n{i}", Resources(16000, 64 * 2**30, 0, 0, 110), labels={})
    assert helmtask.cluster_shortfall(cal, pods(6, cpu="10")) is None
    why = helmtask.cluster_shortfall(cal, pods(22, cpu="10"))
    assert why == ("cpu: the chart's 22 pods need 220 cores in total, the cluster's 4 schedulable nodes have "
                   "64 cores allocatable in all (156 cores short); memory: the chart's 22 pods need 352Gi in total, "
                   "the cluster's 4 schedulable nodes have 256Gi allocatable in all (96Gi short)")
