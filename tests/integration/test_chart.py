"""The helm chart against the local control plane: `helm install` into a namespace of its
own, the API server accepts every object and the pods land on kwok nodes; the chart's
ServiceAccounts can do what their processes need and cannot read Secrets (`kubectl auth
can-i --as`); the operator and the planner service, run from this checkout with tokens of
the chart's ServiceAccounts and the environment the chart gave their Deployments, book a
plan from examples/ and answer an offer set (static token from the Secret the chart was
given); `helm uninstall` leaves nothing of the release behind.

The cluster-scoped objects other tests make too: the CRDs exist already or are created by
helm from crds/ (which it skips when they exist, and never deletes); the PriorityClasses
is this release's own, under a name of its own (value priorityClasses.task), so it
can be created, used and deleted without touching those of deploy/.

This test's operator acts on every plan in the cluster, as any operator does, so no other
may run meanwhile (two would both act on the test's plan): the test fails at once, naming
them, if it finds another `python -m execplanner.operator` on this machine. pytest's order
runs it before test_operator.py, whose shared operator lives until the session ends.
"""
from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest
import yaml

from execplanner import localrun

from . import cluster_env
from .conftest import kubectl, priority_level_of, wait_until
from .operator_fixture import OperatorProcess

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "execplanner"
BOOKED_OR_LATER = {"Booked", "Starting", "Running", "Completed"}
CRDS = ("executionplans.execplanner.io", "taskruns.execplanner.io")
EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([cluster_env.binary("helm"), "--kubeconfig", cluster_env.kubeconfig_path(), *args],
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}", pytrace=False)
    return proc


def get(*args: str) -> dict:
    return json.loads(kubectl("get", "-o", "json", *args).stdout)


def can_i(sa: str, *args: str) -> bool:
    """kubectl auth can-i, as the ServiceAccount sa (system:serviceaccount:<ns>:<name>)."""
    out = kubectl("auth", "can-i", f"--as={sa}", *args, check=False)
    answer = out.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {args}: {out.stdout}{out.stderr}"
    return answer == "yes"


def other_operators() -> list[str]:
    """`python -m execplanner.operator` processes on this machine (pid and command line)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and b"-m" in argv and b"execplanner.operator" in argv:
            found.append(f"{proc.name}: {b' '.join(argv).decode(errors='replace').strip()}")
    return found


def container_env(deployment: dict) -> dict[str, str]:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in c["env"] if "value" in e}


def test_chart_installs_and_its_identities_run_execplanner(kubeconfig: str, namespace: str, tmp_path: Path):
    release = f"execplanner-{uuid.uuid4().hex[:6]}"  # names: <release>-operator, <release>-planner
    task = f"{release}-task"
    user, token = "chart-user", uuid.uuid4().hex
    values = {
        "priorityClasses": {"create": True, "task": task},
        "operator": {"holdLeadSeconds": 2},
        "planner": {"replicas": 2, "identity": {"tokenSecret": {"name": f"{release}-tokens", "key": "tokens"}},
                    "namespaces": {"map": {user: namespace}}},
    }
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values))
    (tmp_path / "tokens").write_text(f"{token},{user}\n")
    kubectl("create", "secret", "generic", f"{release}-tokens", "-n", namespace, f"--from-file=tokens={tmp_path / 'tokens'}")
    selector = f"app.kubernetes.io/instance={release}"
    operator_sa, planner_sa = f"{release}-operator", f"{release}-planner"
    op: OperatorProcess | None = None
    pl: localrun.Planner | None = None
    plan_name = f"chart-{release[-6:]}"
    try:
        out = helm("install", release, str(CHART), "-n", namespace, "--values", str(tmp_path / "values.yaml"),
                   "--wait", "--timeout", "90s")
        assert "STATUS: deployed" in out.stdout and "port-forward service/" + planner_sa in out.stdout, out.stdout
        kubectl("wait", "--for=condition=Established", "--timeout=30s", *(f"crd/{n}" for n in CRDS))

        # -- every object was accepted, and the pods run on the fake nodes ------------------
        deployments = {d["metadata"]["name"]: d for d in get("deployments", "-n", namespace, "-l", selector)["items"]}
        assert set(deployments) == {operator_sa, planner_sa}
        assert deployments[operator_sa]["spec"]["strategy"]["type"] == "Recreate"
        assert deployments[operator_sa]["status"].get("readyReplicas") == 1
        assert deployments[planner_sa]["status"].get("readyReplicas") == 2
        # (By name: a benchmark running meanwhile adds and deletes kwok nodes, and their pods.)
        pods = [p for p in get("pods", "-n", namespace, "-l", selector)["items"]
                if not p["metadata"].get("deletionTimestamp")]
        assert {p["spec"]["serviceAccountName"] for p in pods} == {operator_sa, planner_sa}
        for p in pods:
            assert p["spec"]["nodeName"].startswith("kwok-"), p["metadata"]["name"]
            assert p["spec"]["securityContext"]["runAsNonRoot"] is True
        svc = get("service", planner_sa, "-n", namespace)
        assert svc["spec"]["ports"][0]["targetPort"] == "http"
        assert {pc["metadata"]["name"]: pc["value"] for pc in get("priorityclasses", "-l", selector)["items"]} == \
            {task: 2000000}
        for kind in ("clusterroles", "clusterrolebindings"):
            names = {o["metadata"]["name"] for o in get(kind, "-l", selector)["items"]}
            assert {operator_sa, planner_sa} <= names, (kind, names)

        # -- what each identity may do ----------------------------------------------------
        op_user = f"system:serviceaccount:{namespace}:{operator_sa}"
        pl_user = f"system:serviceaccount:{namespace}:{planner_sa}"
        for user in (op_user, pl_user):
            for args in (("get", "secrets", "-A"), ("list", "secrets", "-n", namespace), ("watch", "secrets", "-A"),
                         ("get", "secrets", "-n", "kube-system"), ("delete", "secrets", "-n", namespace),
                         ("patch", "secrets", "-n", namespace)):
                assert not can_i(user, *args), f"{user} can {args}"
        # Only a notebook session's token: the operator creates it, and never reads it.
        assert can_i(op_user, "create", "secrets", "-n", namespace) and not can_i(pl_user, "create", "secrets", "-n",
                                                                                   namespace)
        for args in (("watch", "executionplans.execplanner.io", "-A"),
                     ("patch", "executionplans.execplanner.io", "--subresource=status", "-A"),
                     ("patch", "taskruns.execplanner.io", "--subresource=status", "-A"),
                     ("list", "nodes"), ("watch", "pods", "-A"), ("create", "pods", "-n", namespace),
                     ("delete", "pods", "-n", namespace), ("create", "jobs.batch", "-n", namespace),
                     ("watch", "resourcequotas", "-A"), ("create", "events", "-n", namespace),
                     ("create", "events.events.k8s.io", "-n", namespace),
                     ("list", "customresourcedefinitions.apiextensions.k8s.io")):
            assert can_i(op_user, *args), f"the operator cannot {args}"
        for args in (("delete", "nodes"), ("delete", "namespaces"), ("create", "clusterroles")):
            assert not can_i(op_user, *args), f"the operator can {args}"
        for args in (("list", "nodes"), ("watch", "pods", "-A"), ("watch", "resourcequotas", "-A"),
                     ("get", "pods", "--subresource=log", "-n", namespace), ("create", "namespaces"),
                     ("create", "executionplans.execplanner.io", "-n", namespace),
                     ("patch", "executionplans.execplanner.io", "-n", namespace),
                     ("delete", "executionplans.execplanner.io", "-n", namespace),
                     ("watch", "taskruns.execplanner.io", "-A")):
            assert can_i(pl_user, *args), f"the planner cannot {args}"
        for args in (("patch", "executionplans.execplanner.io", "--subresource=status", "-n", namespace),
                     ("update", "taskruns.execplanner.io", "--subresource=status", "-n", namespace),
                     ("create", "pods", "-n", namespace), ("delete", "namespaces"), ("list", "namespaces"),
                     ("create", "jobs.batch", "-n", namespace), ("delete", "nodes"),
                     ("create", "configmaps", "-n", namespace)):
            assert not can_i(pl_user, *args), f"the planner can {args}"

        # -- the operator, with the chart's identity and settings, books a plan -----------
        env = {k: v for k, v in container_env(deployments[operator_sa]).items()
               if k.startswith("EXECPLANNER_") and k != "EXECPLANNER_HEALTH_PORT"}  # the test picks a free port
        # Outside the image: the cluster's helm, and a helm home of the test's own.
        env.update(EXECPLANNER_HELM=cluster_env.binary("helm"), EXECPLANNER_HELM_HOME=str(tmp_path / "helm"))
        assert env["EXECPLANNER_TASK_PRIORITY_CLASS"] == task and env["EXECPLANNER_HOLD_LEAD_SECONDS"] == "2"
        creds = localrun.service_account_kubeconfig(tmp_path, namespace, operator_sa, hours=1)
        if others := other_operators():
            pytest.fail("another execplanner operator runs on this machine and would act on this test's plan "
                        "too; run this test when it has stopped:\n" + "\n".join(others), pytrace=False)
        # The release's FlowSchema files the operator's requests under the release's own level.
        wait_until(lambda: priority_level_of(str(creds)) == (operator_sa, operator_sa), timeout=15,
                   what=f"{operator_sa}'s requests to be filed under its own priority level")
        op = OperatorProcess(creds, tmp_path / "operator.log", env).start()
        plan = yaml.safe_load((ROOT / "examples" / "plan-now.yaml").read_text())
        plan["metadata"] = {"name": plan_name, "namespace": namespace}
        kubectl("apply", "-f", "-", input=yaml.safe_dump(plan))

        def booked():
            status = get("executionplan", plan_name, "-n", namespace).get("status") or {}
            if status.get("phase") in ("Rejected", "Failed"):
                pytest.fail(f"the plan ended {status}\n{op.tail(60)}", pytrace=False)
            return status if status.get("phase") in BOOKED_OR_LATER and status.get("booking") else None

        try:
            # (On a fresh cluster a second or two; longer when the cluster holds thousands of
            # plans, e.g. a benchmark's, which the operator takes up first.)
            status = wait_until(booked, timeout=90, what=f"plan {plan_name} to be Booked")
        except AssertionError as e:
            pytest.fail(f"{e}\n{op.tail(60)}", pytrace=False)
        assert status["booking"]
        # The task's pod uses the release's priority class and waiter image: the chart's
        # settings reached the operator.
        pod = wait_until(lambda: get("pods", "-n", namespace, "-l", "execplanner.io/role=task")["items"], timeout=30,
                         what="the plan's task pod")[0]
        assert pod["spec"]["priorityClassName"] == task
        assert pod["spec"]["initContainers"][0]["image"] == env["EXECPLANNER_WAITER_IMAGE"]
        assert other_operators() == [f"{op.pid}: {sys.executable} -m execplanner.operator"]

        # -- the planner service, with the chart's identity and settings, answers -----------
        env = {k: v for k, v in container_env(deployments[planner_sa]).items()
               if k.startswith("EXECPLANNER_") and k != "EXECPLANNER_PLANNER_PORT"}  # a free port
        assert env["EXECPLANNER_PLANNER_TOKEN_FILE"] == "/etc/execplanner/tokens/tokens"  # the Secret, mounted
        env.update(EXECPLANNER_PLANNER_HOST="127.0.0.1", EXECPLANNER_PLANNER_TOKEN_FILE=str(tmp_path / "tokens"),
                   EXECPLANNER_HELM=cluster_env.binary("helm"), EXECPLANNER_HELM_HOME=str(tmp_path / "helm"))
        creds = localrun.service_account_kubeconfig(tmp_path, namespace, planner_sa, hours=1)
        pl = localrun.Planner(creds, tmp_path / "planner.log", env)
        try:
            pl.start(timeout=60)  # ready: /readyz says its watches listed, with the chart's RBAC
        except RuntimeError as e:
            pytest.fail(str(e), pytrace=False)
        body = {"name": "chart", "executable": {"type": EB_DOCKER, "image": "busybox:1.36"},
                "resources": {"compute": [{"cores": {"requested": {"min": 1, "max": 1}},
                                           "memory": {"requested": {"min": 1, "max": 1}}}]},
                "schedule": {"requested": {"duration": "PT30S"}}, "offers": 1}
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        with urllib.request.urlopen(urllib.request.Request(f"{pl.url}/offersets", json.dumps(body).encode(), auth),
                                    timeout=30) as r:  # 303 to the offer set, followed
            offerset = json.loads(r.read())
        assert offerset["result"] == "YES" and offerset["offers"], f"{offerset}\n{pl.tail(40)}"
        made = get("executionplans", "-n", namespace)["items"]  # created by the planner in the user's namespace
        assert len(made) == 2 and any(p["metadata"]["name"] != plan_name for p in made)
    finally:
        if pl is not None:
            pl.stop()
        if op is not None and op.alive():  # the operator releases the plans and drops their finalizers
            kubectl("delete", "executionplans", "--all", "-n", namespace, "--wait=false")
            try:
                wait_until(lambda: not kubectl("get", "executionplans", "-n", namespace, "-o", "name").stdout.strip(),
                           timeout=30, what="the plans to be deleted")
            finally:
                op.stop()
        for left in kubectl("get", "executionplans", "-n", namespace, "-o", "name").stdout.split():
            # no operator to release it: drop the finalizer so the namespace can go
            kubectl("patch", left, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}',
                    check=False)
        kubectl("delete", "jobs,pods", "--all", "-n", namespace, "--wait=false", check=False)
        uninstall = helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "60s", check=False)

    assert uninstall.returncode == 0, uninstall.stderr
    for kind in ("priorityclasses", "clusterroles", "clusterrolebindings", "flowschemas",
                 "prioritylevelconfigurations"):
        assert not get(kind, "-l", selector)["items"], f"{kind} of {release} left after helm uninstall"
    assert not get("deployments,services,serviceaccounts", "-n", namespace, "-l", selector)["items"]
    for name in CRDS:  # helm keeps the CRDs (and so every plan in the cluster)
        get("crd", name)
