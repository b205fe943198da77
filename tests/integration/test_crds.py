"""The CustomResourceDefinitions in crds/ against a real API server (cluster/up.sh).

The CRDs are applied once for the module; every example must be accepted, bad input must
be refused at apply time with a message naming the offending field, defaults, the status
subresource, short names, categories, printer columns and `kubectl explain` must work.
Most checks are server-side dry runs (nothing stored, nothing for an operator to act on).
"""
from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from .conftest import kubectl, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "crds"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
GROUP, VERSION = "execplanner.io", "v1alpha1"
CRD_NAMES = ("executionplans.execplanner.io", "taskruns.execplanner.io")

BASE_PLAN = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "ExecutionPlan",
    "metadata": {"name": "probe"},
    "spec": {
        "executable": {"type": "docker-container", "image": "busybox:1.36"},
        "resources": {"cores": {"min": 2}, "memory": {"min": "4Gi"}},
        "schedule": {"duration": {"min": "30s", "max": "2m"}},
    },
}


# ---------------------------------------------------------------------------------------
# Fixtures and helpers

@pytest.fixture(scope="module")
def crds(kubeconfig: str) -> None:
    """Applies crds/ (server-side) and waits until both CRDs are Established and served."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *(f"crd/{n}" for n in CRD_NAMES))
    # Established comes a moment before discovery (and so kubectl's short names) knows them.
    wait_until(lambda: kubectl("get", "xp,tr", "-A", check=False).returncode == 0,
               timeout=30, what="the new resources in discovery")


@pytest.fixture(scope="module")
def objects(api: client.ApiClient, crds: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


@pytest.fixture(scope="module")
def ns(core: client.CoreV1Api, crds: None):
    """One namespace for the whole module: custom objects need no service account."""
    name = f"t-crds-{uuid.uuid4().hex[:6]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"execplanner.io/test": "true"})))
    yield name
    core.delete_namespace(name, propagation_policy="Background")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def plan(**changes) -> dict:
    """BASE_PLAN with spec paths replaced: plan(**{"resources.cores": {...}}); None deletes."""
    body = copy.deepcopy(BASE_PLAN)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = body["spec"]
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return body


def dry_run_create(objects: client.CustomObjectsApi, ns: str, body: dict, plural: str = "executionplans"):
    """Creates body with server-side dry run and strict field validation (as kubectl does)."""
    return objects.create_namespaced_custom_object(
        GROUP, VERSION, ns, plural, body, dry_run="All", field_validation="Strict")


def refusal(objects: client.CustomObjectsApi, ns: str, body: dict, plural: str = "executionplans") -> str:
    """The API server's message refusing body (fails the test if body is accepted)."""
    try:
        dry_run_create(objects, ns, body, plural)
    except client.ApiException as e:
        assert e.status in (400, 422), e
        return json.loads(e.body)["message"]
    pytest.fail(f"accepted but should have been refused: {json.dumps(body['spec'])}")


def contains(actual, expected) -> bool:
    """Whether every field of expected is in actual with the same value (recursively)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(contains, actual, expected))
    return actual == expected


# ---------------------------------------------------------------------------------------
# The CRDs themselves

def test_crds_apply_and_reapply_idempotently(crds: None):
    before = json.loads(kubectl("get", "crd", *CRD_NAMES, "-o", "json").stdout)["items"]
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    after = json.loads(kubectl("get", "crd", *CRD_NAMES, "-o", "json").stdout)["items"]
    for old, new in zip(before, after):
        # (resourceVersion is not compared: the API server may still be writing the CRD's status.)
        assert new["metadata"]["generation"] == old["metadata"]["generation"], new["metadata"]["name"]
        assert new["spec"] == old["spec"], new["metadata"]["name"]
        assert {c["type"]: c["status"] for c in new["status"]["conditions"]}.get("Established") == "True"


def test_short_names_and_category(crds: None, ns: str):
    for resource in ("xp", "tr", "executionplans", "taskruns", "execplanner"):
        kubectl("get", resource, "-n", ns)  # check=True: fails if kubectl does not know it


def test_explain_shows_descriptions(crds: None):
    def explain(path: str) -> str:  # kubectl wraps descriptions: compare with single spaces
        return " ".join(kubectl("explain", path).stdout.split())

    out = explain("executionplan.spec.resources")
    assert "Resources the task needs" in out
    for field in ("cores <Object> -required-", "memory <Object> -required-", "gpus <Object>"):
        assert field in out, out
    out = explain("xp.spec.resources.memory")
    assert "as Kubernetes reads G" in out and "Least memory the task can run with" in out, out
    out = explain("tr.status.phase")
    assert "IVOA UWS 1.1 phase" in out and "EXECUTING" in out, out


# ---------------------------------------------------------------------------------------
# What is accepted

@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_accepted(objects: client.CustomObjectsApi, ns: str, path: Path):
    body = yaml.safe_load(path.read_text())
    created = dry_run_create(objects, ns, body)
    # Nothing pruned or rewritten: every field of the example is in the stored object.
    assert contains(created["spec"], body["spec"]), created["spec"]


def test_examples_cover_the_cases():
    assert {p.name for p in EXAMPLES} >= {"plan-now.yaml", "plan-later.yaml", "plan-too-big.yaml",
                                         "plan-manual.yaml", "plan-helm.yaml"}


GOOD = {
    "memory-G-below-Gi": {"resources.memory": {"min": "1G", "max": "1Gi"}},
    "memory-bytes": {"resources.memory": {"min": 1073741824, "max": "2Gi"}},
    "cores-millis-and-int": {"resources.cores": {"min": "500m", "max": 2}},
    "cores-decimal-string": {"resources.cores": {"min": "1.5", "max": "1500m"}},
    "gpus": {"resources.gpus": {"min": 0, "max": 2}},
    "durations-iso": {"schedule.duration": {"min": "PT2H", "max": "P1DT2H"}},
    "durations-short": {"schedule.duration": {"min": "60s", "max": "1h30m"}},
    "durations-mixed": {"schedule.duration": {"min": "PT90M", "max": "9h"}},
    "duration-equal": {"schedule.duration": {"min": "PT1H", "max": "60m"}},
    "duration-weeks-days": {"schedule.duration": {"min": "2d", "max": "P1W"}},
    "intervals": {"schedule.start": ["2026-11-24T15:00:00Z/2026-11-24T17:00:00Z",
                                     "2026-11-24T15:00:00Z/PT2H",
                                     "2026-11-25T09:30:00.5+01:00/P1DT2H"]},
    "ivoa-container-uri": {"executable.type": "uri://docker-container"},
    "ivoa-eb-container-uri": {"executable.type":
                              "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"},
    "helm-uri": {"executable": {"type": "uri://kubernetes-helm", "chart": "oci://ghcr.io/stefanprodan/charts/podinfo"}},
    "privileged-false": {"executable.privileged": False},
    "manual-accepted-offer": {"acceptPolicy": "Manual", "offers": 10, "acceptedOffer": "o-1"},
    "placement": {"nodeSelector": {"type": "kwok"},
                  "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]},
}


@pytest.mark.parametrize("changes", GOOD.values(), ids=GOOD.keys())
def test_good_input_is_accepted(objects: client.CustomObjectsApi, ns: str, changes: dict):
    dry_run_create(objects, ns, plan(**changes))


def test_defaults_are_applied(objects: client.CustomObjectsApi, ns: str):
    spec = dry_run_create(objects, ns, BASE_PLAN)["spec"]
    assert spec["offers"] == 1
    assert spec["acceptPolicy"] == "First"
    assert spec["cancel"] is False
    assert "max" not in spec["resources"]["cores"]  # max defaults to min in the operator, not here
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TaskRun", "metadata": {"name": "probe"},
            "spec": {"planRef": "some-plan"}}
    assert dry_run_create(objects, ns, body, "taskruns")["spec"]["abort"] is False


# ---------------------------------------------------------------------------------------
# What is refused, and the message names the field

BAD = {
    # id: (spec changes, text the message must contain)
    "cores-min-above-max": ({"resources.cores": {"min": 4, "max": 2}}, ["spec.resources.cores", "cores.min (4)"]),
    "cores-min-above-max-millis": ({"resources.cores": {"min": "1500m", "max": "1"}}, ["spec.resources.cores"]),
    "memory-min-above-max-units": ({"resources.memory": {"min": "2Gi", "max": "1000Mi"}},
                                   ["spec.resources.memory", "memory.min (2Gi)"]),
    "cores-zero": ({"resources.cores": {"min": 0}}, ["spec.resources.cores.min", "positive"]),
    "cores-negative": ({"resources.cores": {"min": -2}}, ["spec.resources.cores.min", "positive"]),
    "cores-negative-string": ({"resources.cores": {"min": "-500m"}}, ["spec.resources.cores.min"]),
    "cores-max-zero": ({"resources.cores": {"min": 1, "max": "0"}}, ["spec.resources.cores.max"]),
    "memory-zero": ({"resources.memory": {"min": "0Gi"}}, ["spec.resources.memory.min"]),
    "memory-bare-small-number": ({"resources.memory": {"min": 8}}, ["spec.resources.memory.min", "1Mi"]),
    "cores-absurd": ({"resources.cores": {"min": "1e400"}}, ["spec.resources.cores.min", "at most"]),
    "memory-absurd": ({"resources.memory": {"min": "2Ei"}}, ["spec.resources.memory.min", "at most"]),
    "gpus-negative": ({"resources.gpus": {"min": -1}}, ["spec.resources.gpus.min"]),
    "gpus-min-above-max": ({"resources.gpus": {"min": 2, "max": 1}}, ["spec.resources.gpus"]),
    "cores-malformed": ({"resources.cores": {"min": "two"}}, ["spec.resources.cores.min", "quantity"]),
    "memory-malformed": ({"resources.memory": {"min": "4 GB"}}, ["spec.resources.memory.min", "quantity"]),
    "memory-float": ({"resources.memory": {"min": 1.5}}, ["spec.resources.memory.min"]),
    "cores-missing": ({"resources.cores": None}, ["spec.resources.cores"]),
    "memory-min-missing": ({"resources.memory": {"max": "4Gi"}}, ["spec.resources.memory.min"]),
    "unknown-executable-type": ({"executable.type": "docker-compose"}, ["spec.executable.type", "docker-container"]),
    "container-without-image": ({"executable.image": None}, ["spec.executable.image", "required"]),
    "helm-without-chart": ({"executable": {"type": "helm-chart"}}, ["spec.executable.chart", "required"]),
    "privileged": ({"executable.privileged": True}, ["spec.executable.privileged", "refused"]),
    "duration-malformed": ({"schedule.duration": {"min": "2 hours"}}, ["spec.schedule.duration.min", "ISO 8601"]),
    "duration-months": ({"schedule.duration": {"min": "P1M"}}, ["spec.schedule.duration.min"]),
    "duration-empty-iso": ({"schedule.duration": {"min": "PT"}}, ["spec.schedule.duration.min"]),
    "duration-zero": ({"schedule.duration": {"min": "0s"}}, ["spec.schedule.duration.min", "zero"]),
    "duration-max-malformed": ({"schedule.duration": {"min": "1m", "max": "5 min"}}, ["spec.schedule.duration.max"]),
    "duration-min-above-max": ({"schedule.duration": {"min": "2h", "max": "PT30M"}},
                               ["spec.schedule.duration", "duration.min (2h)"]),
    "duration-min-above-max-days": ({"schedule.duration": {"min": "P1DT1S", "max": "24h"}},
                                    ["spec.schedule.duration"]),
    "duration-missing": ({"schedule": {"start": []}}, ["spec.schedule.duration"]),
    "interval-malformed": ({"schedule.start": ["tomorrow"]}, ["spec.schedule.start[0]", "ISO 8601 interval"]),
    "interval-no-zone": ({"schedule.start": ["2026-11-24T15:00:00/PT2H"]}, ["spec.schedule.start[0]"]),
    "interval-bad-duration": ({"schedule.start": ["2026-11-24T15:00:00Z/PT2H",
                                                  "2026-11-24T15:00:00Z/2h"]}, ["spec.schedule.start[1]"]),
    "interval-ends-before-start": ({"schedule.start": ["2026-11-24T17:00:00Z/2026-11-24T15:00:00Z"]},
                                   ["spec.schedule.start[0]", "end after it starts"]),
    "interval-zero-duration": ({"schedule.start": ["2026-11-24T17:00:00Z/PT0S"]}, ["spec.schedule.start[0]"]),
    "offers-zero": ({"offers": 0}, ["spec.offers"]),
    "offers-too-many": ({"offers": 11}, ["spec.offers"]),
    "accept-policy-unknown": ({"acceptPolicy": "Auto"}, ["spec.acceptPolicy"]),
    "accepted-offer-without-manual": ({"acceptedOffer": "o-1"}, ["spec.acceptedOffer", "Manual"]),
    "unknown-field": ({"resources.cpus": {"min": 2}}, ["cpus"]),
    "toleration-bad-operator": ({"tolerations": [{"key": "a", "operator": "Maybe"}]},
                                ["spec.tolerations[0].operator"]),
}


@pytest.mark.parametrize("changes,expected", BAD.values(), ids=BAD.keys())
def test_bad_input_is_refused_naming_the_field(objects: client.CustomObjectsApi, ns: str, changes, expected):
    message = refusal(objects, ns, plan(**changes))
    for text in expected:
        assert text in message, message


def test_kubectl_apply_refusal_names_the_field(crds: None, ns: str):
    """The same refusal as a user sees it, through kubectl apply."""
    body = plan(**{"resources.memory": {"min": "2Gi", "max": "1000Mi"}})
    body["metadata"]["name"] = unique("bad")
    out = kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(body), check=False)
    assert out.returncode != 0
    assert "spec.resources.memory.max" in out.stderr and "must not be more than" in out.stderr, out.stderr


TASKRUN_BAD = {
    "plan-ref-missing": ({}, ["spec.planRef", "Required"]),
    "plan-ref-not-a-name": ({"planRef": "Not_A_Name"}, ["spec.planRef"]),
}


@pytest.mark.parametrize("spec,expected", TASKRUN_BAD.values(), ids=TASKRUN_BAD.keys())
def test_bad_taskrun_is_refused(objects: client.CustomObjectsApi, ns: str, spec: dict, expected):
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TaskRun", "metadata": {"name": "probe"}, "spec": spec}
    message = refusal(objects, ns, body, "taskruns")
    for text in expected:
        assert text in message, message


# ---------------------------------------------------------------------------------------
# Stored objects: status subresource, transition rules, printer columns

def _patch(kind: str, name: str, ns: str, patch: dict, status: bool = False, check: bool = True):
    args = ["patch", kind, name, "-n", ns, "--type=merge", "-p", json.dumps(patch)]
    if status:
        args.append("--subresource=status")
    return kubectl(*args, check=check)


def _get(kind: str, name: str, ns: str) -> dict:
    return json.loads(kubectl("get", kind, name, "-n", ns, "-o", "json").stdout)


def test_status_subresource(crds: None, ns: str):
    name = unique("status")
    body = copy.deepcopy(BASE_PLAN)
    body["metadata"]["name"] = name
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps(body))

    # A status write ignores spec, and keeps fields the schema does not declare (kopf's).
    _patch("xp", name, ns, {"spec": {"offers": 5}, "status": {
        "phase": "Offered", "kopf": {"progress": {"h": {"retries": 1}}},
        "offers": [{"id": "o-1", "start": "2026-11-24T15:00:00Z", "end": "2026-11-24T15:02:00Z",
                    "cores": 2, "memory": "4Gi", "gpus": 0, "expires": "2026-11-24T14:05:00Z"}],
        "conditions": [{"type": "Offered", "status": "True", "reason": "OffersMade", "message": "1 offer",
                        "lastTransitionTime": "2026-11-24T14:00:00Z", "observedGeneration": 1}]}}, status=True)
    obj = _get("xp", name, ns)
    assert obj["spec"]["offers"] == 1
    assert obj["status"]["phase"] == "Offered"
    assert obj["status"]["kopf"] == {"progress": {"h": {"retries": 1}}}
    assert obj["status"]["offers"][0]["id"] == "o-1"

    # A spec write ignores status.
    _patch("xp", name, ns, {"spec": {"offers": 2}, "status": {"phase": "Failed"}})
    obj = _get("xp", name, ns)
    assert obj["spec"]["offers"] == 2
    assert obj["status"]["phase"] == "Offered"
    assert obj["metadata"]["generation"] == 2

    # The status is validated too.
    out = _patch("xp", name, ns, {"status": {"phase": "Sleeping"}}, status=True, check=False)
    assert out.returncode != 0 and "status.phase" in out.stderr, out.stderr


def test_printer_columns(crds: None, ns: str):
    name = unique("columns")
    body = copy.deepcopy(BASE_PLAN)
    body["metadata"]["name"] = name
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps(body))
    _patch("xp", name, ns, {"status": {"phase": "Booked", "taskRun": f"{name}-1", "booking": {
        "offer": "o-1", "start": "2026-11-24T15:00:00Z", "end": "2026-11-24T15:02:00Z",
        "cores": 2, "memory": "4Gi", "gpus": 0,
        "placements": [{"node": "kwok-node-0", "cores": 2, "memory": "4Gi", "gpus": 0}]}}}, status=True)

    header, row = kubectl("get", "xp", name, "-n", ns).stdout.splitlines()
    assert header.split() == ["NAME", "PHASE", "START", "END", "CORES", "MEMORY", "AGE"]
    assert row.split()[:6] == [name, "Booked", "2026-11-24T15:00:00Z", "2026-11-24T15:02:00Z", "2", "4Gi"]
    header = kubectl("get", "xp", name, "-n", ns, "-o", "wide").stdout.splitlines()[0]
    assert header.split()[-3:] == ["GPUS", "TASKRUN", "MESSAGE"]

    run = unique("run")
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TaskRun", "metadata": {"name": run},
        "spec": {"planRef": name}}))
    _patch("tr", run, ns, {"status": {"phase": "EXECUTING", "startTime": "2026-11-24T15:00:01Z",
                                      "log": {"pod": f"{run}-pod", "container": "task"}}}, status=True)
    header, row = kubectl("get", "tr", run, "-n", ns).stdout.splitlines()
    assert header.split() == ["NAME", "PHASE", "PLAN", "START", "END", "AGE"]
    assert row.split()[:4] == [run, "EXECUTING", name, "2026-11-24T15:00:01Z"]


def test_taskrun_transition_rules(crds: None, ns: str):
    run = unique("rules")
    kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TaskRun", "metadata": {"name": run},
        "spec": {"planRef": "first-plan"}}))
    out = _patch("tr", run, ns, {"spec": {"planRef": "other-plan"}}, check=False)
    assert out.returncode != 0 and "spec.planRef" in out.stderr and "cannot be changed" in out.stderr, out.stderr
    _patch("tr", run, ns, {"spec": {"abort": True}})
    out = _patch("tr", run, ns, {"spec": {"abort": False}}, check=False)
    assert out.returncode != 0 and "spec.abort" in out.stderr, out.stderr
    out = _patch("tr", run, ns, {"status": {"phase": "RUNNING"}}, status=True, check=False)
    assert out.returncode != 0 and "status.phase" in out.stderr, out.stderr
