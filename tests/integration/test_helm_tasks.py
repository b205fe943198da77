"""Helm-chart tasks end to end: charts from a real chart repository (packaged with `helm
package`, indexed with `helm repo index`, served over HTTP on 127.0.0.1), planned from their
footprint, installed at the booking's start with the operator's own credentials and
post-renderer, and uninstalled at its end. Also the allowlists (operator_fixture sets them:
images from docker.io and registry.k8s.io, charts from http://127.0.0.1 only).

Charts (tests/integration/charts): gaia (11 pods, 220 cores and 360G in all), spread (three
10-core pods that no 16-core node holds two of), batch (a Job of two pods), broken (does not
render), elsewhere (an image from a registry that is not allowed).
"""
from __future__ import annotations

import time

import pytest
from kubernetes import client

from execplanner.cluster.charts import release_name

from .conftest import kwok_nodes, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

GROUP, VERSION, PLANS, RUNS = "execplanner.io", "v1alpha1", "executionplans", "taskruns"
L_UID, L_ROLE, L_WORKLOAD = "execplanner.io/plan-uid", "execplanner.io/role", "execplanner.io/workload"
COMPLETE = "pod-complete.stage.kwok.x-k8s.io/delay"
FAIL = "pod-fail.stage.execplanner.io/delay"
TERMINAL = {"Completed", "Failed", "Rejected", "Expired", "Cancelled"}
GAIA_NODES = 4
GAIA_TAINT = {"key": "execplanner.io/test", "value": "gaia", "effect": "NoSchedule"}
GAIA_LABEL = ("execplanner.io/test-pool", "gaia")


class Helm:
    """One test's plans in its namespace, and what they made."""

    def __init__(self, api: client.ApiClient, namespace: str, operator, since: int, repo: str):
        self.ns, self.operator, self.since, self.repo = namespace, operator, since, repo
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.xp = client.CustomObjectsApi(api)

    def plan(self, name: str, chart: str, duration: str = "30s", values: dict | None = None,
             repository: str | None = None, annotations: dict | None = None, **spec) -> dict:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ExecutionPlan", "metadata": {"name": name},
                "spec": {"executable": {"type": "helm-chart", "chart": chart, "repository": repository or self.repo,
                                        "version": "0.1.0", "values": values or {},
                                        "podAnnotations": annotations or {}},
                         "schedule": {"duration": {"min": duration}}, **spec}}
        return self.xp.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS, body)

    def get(self, name: str, plural: str = PLANS) -> dict | None:
        try:
            return self.xp.get_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def describe(self, name: str) -> str:
        plan = self.get(name) or {}
        status = {k: v for k, v in (plan.get("status") or {}).items() if k != "kopf"}
        pods = self.core.list_namespaced_pod(self.ns).items
        return (f"plan {self.ns}/{name} status: {status}\npods:" + "".join(
            f"\n  {p.metadata.name} node={p.spec.node_name} phase={p.status.phase}" for p in pods)
            + "\n" + self.operator.tail(60, since=self.since))

    def wait_phase(self, name: str, phase: str, timeout: float = 30) -> dict:
        def check():
            plan = self.get(name)
            got = ((plan or {}).get("status") or {}).get("phase")
            if got == phase:
                return plan
            if got in TERMINAL:
                raise AssertionError(f"plan {name} is {got}, not {phase}\n{self.describe(name)}")
            return None
        try:
            return wait_until(check, timeout=timeout, what=f"plan {name} to be {phase}")
        except AssertionError as e:
            if "timed out" in str(e):
                raise AssertionError(f"{e}\n{self.describe(name)}") from None
            raise

    def pods(self, uid: str) -> list[client.V1Pod]:
        return self.core.list_namespaced_pod(self.ns, label_selector=f"{L_UID}={uid}").items

    def releases(self, release: str) -> list[client.V1ConfigMap]:
        return self.core.list_namespaced_config_map(self.ns, label_selector=f"owner=helm,name={release}").items

    def delete_all(self) -> None:
        for plan in self.xp.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS)["items"]:
            try:
                self.xp.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS, plan["metadata"]["name"])
            except client.ApiException as e:
                if e.status != 404:
                    raise
        wait_until(lambda: not self.xp.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS)["items"],
                   timeout=30, what="the test's plans to be deleted (finalizer: release and uninstall)")


@pytest.fixture
def helm(api, namespace, operator, operator_log, chart_repo):  # noqa: F811
    h = Helm(api, namespace, operator, operator_log, chart_repo)
    yield h
    h.delete_all()


def condition(plan: dict, ctype: str = "Booked") -> dict:
    return next((c for c in (plan.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), {})


# -- refusals -----------------------------------------------------------------------------------------

def test_render_error_rejects_with_helms_message(helm):
    helm.plan("broken", "broken")
    plan = helm.wait_phase("broken", "Rejected", timeout=20)
    cond = condition(plan)
    assert cond.get("reason") == "RenderFailed" and cond.get("status") == "False", helm.describe("broken")
    assert "values.size is required" in cond["message"], cond
    assert "broken" in cond["message"] and "helm could not render" in cond["message"]


def test_gaia_is_rejected_on_the_default_cluster_naming_the_shortfall(helm):
    helm.plan("gaia", "gaia", duration="9h")
    plan = helm.wait_phase("gaia", "Rejected", timeout=20)
    cond = condition(plan)
    assert cond.get("reason") == "Unsatisfiable", helm.describe("gaia")
    message = cond["message"]
    assert "220 cores" in message and "short" in message, message
    assert "cpu:" in message and "memory:" in message and "360G" in message, message
    fp = plan["status"]["footprint"]
    assert (fp["pods"], fp["cores"], fp["memory"]) == (11, "220", "360G"), fp
    assert {(w["kind"], w["pods"]) for w in fp["workloads"]} == {("StatefulSet", 10), ("Deployment", 1)}


def test_allowlists_reject_charts_and_images_from_elsewhere(helm):
    helm.plan("foreign-repo", "web", repository="https://charts.example.invalid/stable")
    helm.plan("foreign-image", "elsewhere")
    container = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ExecutionPlan", "metadata": {"name": "foreign-container"},
                 "spec": {"executable": {"type": "docker-container", "image": "quay.io/someone/tool:1.0"},
                          "resources": {"cores": {"min": 1}, "memory": {"min": "1Gi"}},
                          "schedule": {"duration": {"min": "10s"}}}}
    helm.xp.create_namespaced_custom_object(GROUP, VERSION, helm.ns, PLANS, container)
    for name, needle in (("foreign-image", "registry quay.io"), ("foreign-container", "registry quay.io"),
                         ("foreign-repo", "https://charts.example.invalid")):
        cond = condition(helm.wait_phase(name, "Rejected", timeout=20))
        assert cond.get("reason") == "NotAllowed" and needle in cond["message"], (name, cond)
    assert "Job/" in condition(helm.get("foreign-image"))["message"]  # names the chart's workload


# -- booked, installed, uninstalled ----------------------------------------------------------------------

def test_chart_across_nodes_is_installed_at_the_start_and_uninstalled_at_the_end(helm):
    created = time.time()
    helm.plan("spread", "spread", duration="25s")
    plan = wait_until(lambda: (p := helm.get("spread")) and (p.get("status") or {}).get("booking") and p,
                      timeout=20, what="the spread plan's booking")
    uid, booking, fp = plan["metadata"]["uid"], plan["status"]["booking"], plan["status"]["footprint"]
    assert fp["pods"] == 3 and fp["cores"] == "30", fp
    pods_booked = {p["pod"]: p["node"] for p in booking["placements"]}
    assert set(pods_booked) == {"Deployment/web#0", "Deployment/web#1", "Deployment/db#0"}, booking
    assert len(set(pods_booked.values())) == 3, f"no node holds two 10-core pods: {booking}"
    assert booking["cores"] == "30"
    release = release_name("spread", uid)

    # Started at once (the booking starts now): the release's pods run on the booked nodes.
    helm.wait_phase("spread", "Running", timeout=30)
    run = helm.get("spread", RUNS)
    assert run and run["status"]["phase"] == "EXECUTING", run
    pods = [p for p in helm.pods(uid) if p.status.phase == "Running"]
    assert len(pods) == 3, helm.describe("spread")
    for pod in pods:
        workload = pod.metadata.labels[L_WORKLOAD]
        wanted = {n for k, n in pods_booked.items() if k.lower().replace("/", "-").startswith(workload)}
        assert pod.spec.node_name in wanted, (pod.metadata.name, pod.spec.node_name, wanted)
        assert pod.spec.priority_class_name == "execplanner-task"
        assert pod.metadata.labels[L_ROLE] == "task"
    assert {p.spec.node_name for p in pods} == set(pods_booked.values())
    assert len(helm.releases(release)) == 1, "helm's release record (a ConfigMap) is missing"
    for pod in pods:  # every pod of the chart waited for the booked start (the post-renderer's waiter)
        assert pod.spec.init_containers[0].name == "wait-for-start", pod.spec.init_containers
        assert pod.metadata.annotations["execplanner.io/start-at"] == booking["start"], pod.metadata.annotations
    cm = helm.core.read_namespaced_config_map("web-config", helm.ns)
    assert cm.metadata.labels[L_UID] == uid and cm.metadata.owner_references[0].uid == uid

    # At the booking's end: uninstalled, run COMPLETED (a chart of services ends with its booking).
    plan = helm.wait_phase("spread", "Completed", timeout=max(10.0, created + 25 + 20 - time.time()))
    assert condition(plan, "Booked").get("status") == "True"
    assert plan["status"]["message"].startswith("the booking ended"), plan["status"]
    run = helm.get("spread", RUNS)
    assert run["status"]["phase"] == "COMPLETED" and run["status"].get("reason") == "BookingEnded", run
    assert plan["status"]["release"] == {"name": release, "installed": False}
    wait_until(lambda: not helm.releases(release), timeout=10, what="the release record to go")
    wait_until(lambda: not helm.apps.list_namespaced_deployment(helm.ns, label_selector=f"{L_UID}={uid}").items,
               timeout=10, what="the release's Deployments to go")
    wait_until(lambda: not [p for p in helm.pods(uid) if p.metadata.deletion_timestamp is None],
               timeout=20, what="the release's pods to go")


@pytest.fixture
def gaia_nodes(core):
    """GAIA_NODES extra kwok nodes of 64 cores / 128Gi, tainted and labelled so only the
    test's plan uses them; removed afterwards."""
    capacity = {"cpu": "64", "memory": "128Gi", "pods": "110", "ephemeral-storage": "1Ti"}
    with kwok_nodes(core, [f"xp-test-gaia-{i}" for i in range(GAIA_NODES)], capacity, taints=[GAIA_TAINT],
                    labels=lambda i: {GAIA_LABEL[0]: GAIA_LABEL[1]}, timeout=30, settle=2) as names:
        yield names


def test_gaia_fits_on_a_cluster_with_room(helm, gaia_nodes):
    helm.plan("gaia", "gaia", duration="9h", nodeSelector={GAIA_LABEL[0]: GAIA_LABEL[1]},
              tolerations=[{"key": GAIA_TAINT["key"], "operator": "Exists"}])
    plan = helm.wait_phase("gaia", "Running", timeout=45)
    booking, uid = plan["status"]["booking"], plan["metadata"]["uid"]
    assert booking["cores"] == "220" and len(booking["placements"]) == 11, booking
    assert {p["node"] for p in booking["placements"]} <= set(gaia_nodes)
    per_node: dict[str, int] = {}
    for p in booking["placements"]:
        per_node[p["node"]] = per_node.get(p["node"], 0) + 20
    assert max(per_node.values()) <= 64, per_node
    pods = [p for p in helm.pods(uid) if p.status.phase == "Running"]
    assert len(pods) == 11 and {p.spec.node_name for p in pods} <= set(gaia_nodes), helm.describe("gaia")
    helm.xp.patch_namespaced_custom_object(GROUP, VERSION, helm.ns, PLANS, "gaia", {"spec": {"cancel": True}})
    helm.wait_phase("gaia", "Cancelled", timeout=20)
    run = helm.get("gaia", RUNS)
    assert run["status"]["phase"] == "ABORTED", run
    wait_until(lambda: not [p for p in helm.pods(uid) if p.metadata.deletion_timestamp is None],
               timeout=20, what="the cancelled release's pods to go")
    assert not helm.releases(release_name("gaia", uid))


def test_a_chart_of_jobs_completes_when_they_do_and_fails_when_they_fail(helm):
    helm.plan("crunch", "batch", duration="40s", annotations={COMPLETE: "3s"})
    helm.plan("crash", "batch", duration="40s", values={"parallelism": 1}, annotations={FAIL: "2s"})
    plan = helm.wait_phase("crunch", "Completed", timeout=30)
    uid = plan["metadata"]["uid"]
    assert plan["status"]["footprint"]["pods"] == 2 and plan["status"]["footprint"]["workloads"][0]["completes"]
    run = helm.get("crunch", RUNS)
    assert run["status"]["phase"] == "COMPLETED" and run["status"].get("exitCode") == 0, run
    # Completed is written first, then the release is uninstalled and recorded so (a crash in
    # between uninstalls it on the restart: the finalizer stays until then).
    wait_until(lambda: helm.get("crunch")["status"]["release"]["installed"] is False, timeout=30,
               what="the release recorded uninstalled")
    wait_until(lambda: not helm.releases(release_name("crunch", uid)), timeout=10, what="the release to go")
    plan = helm.wait_phase("crash", "Failed", timeout=30)
    assert condition(plan).get("status") == "True"  # it was booked; the run failed
    assert plan["status"]["message"].startswith("the chart's Job xp-crash-"), plan["status"]
    run = helm.get("crash", RUNS)
    assert run["status"]["phase"] == "ERROR" and run["status"].get("reason") == "TaskFailed", run
