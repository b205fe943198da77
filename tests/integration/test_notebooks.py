"""Notebook tasks and workshops end to end, against the local control plane.

The seeds' workshop: 30 notebook sessions of 7 cores / 12Gi (210 cores) for 2 h, in a window
next Tuesday 15:00–17:00. It is booked on nodes that can hold it, refused with the shortfall
on nodes that cannot, and offered the next start where it fits only later. Then a workshop
a few seconds ahead: at its start all 30 servers run, each with its Service and its own
token, and at its end they are gone. And a batch notebook, whose executed notebook (the
pod's log, which kwok serves from a file) is kept.

The workshops run on kwok nodes the tests add (POOL_NODES of 32 cores / 64Gi: 4 sessions a
node, 32 in all), tainted and labelled so that only these tests' plans use them and the
default cluster's nodes are not needed; they are removed afterwards.
"""
from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from kubernetes import client

from .conftest import kwok_nodes, wait_until
from .operator_fixture import HOLD_LEAD_SECONDS
from .test_operator import GROUP, PLANS, VERSION, Ctx, phase_of, rfc3339, whole_second_after

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

L_UID, L_SESSION = "execplanner.io/plan-uid", "execplanner.io/session"
COMPLETE = "pod-complete.stage.kwok.x-k8s.io/delay"
POOL_NODES = 8
POOL_LABEL = "execplanner.io/test-pool"
SMALL_LABEL = "execplanner.io/test-pool-small"  # on all pool nodes but one: 7 x 4 = 28 sessions
TAINT = {"key": "execplanner.io/test", "value": "notebooks", "effect": "NoSchedule"}
NOTEBOOK_URL = "https://example.org/tutorials/gaia-dr3-intro.ipynb"


def next_tuesday_window() -> tuple[datetime, datetime]:
    """Next Tuesday (after today), 15:00 to 17:00 UTC."""
    today = datetime.now(timezone.utc).replace(hour=15, minute=0, second=0, microsecond=0)
    days = (1 - today.weekday()) % 7 or 7
    start = today + timedelta(days=days)
    return start, start + timedelta(hours=2)


@pytest.fixture(scope="module")
def pool(core):
    """POOL_NODES kwok nodes of 32 cores / 64Gi for these tests' plans only; removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    capacity = {"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "1Ti"}

    def labels(i: int) -> dict[str, str]:
        return {POOL_LABEL: tag, **({SMALL_LABEL: tag} if i else {})}
    with kwok_nodes(core, [f"xp-test-nb-{tag}-{i}" for i in range(POOL_NODES)], capacity, labels=labels,
                    taints=[TAINT], settle=2) as names:  # (settle: the operator's node watch sees them a moment later)
        yield tag, names


@pytest.fixture
def nb(api, namespace, operator, operator_log, pool):
    c = Ctx(api, namespace, operator, since=operator_log)
    yield c
    operator.ensure_running()
    c.delete_all_plans()
    # The pool's nodes outlive the test: nothing of its plans may be left on them.
    wait_until(lambda: not c.core.list_namespaced_pod(namespace).items, timeout=30, what="the test's pods to go")


def workshop(name: str, tag: str, start: list[str], duration: str = "2h", sessions: int = 30, small: bool = False,
             **spec) -> dict:
    selector = {POOL_LABEL: tag, **({SMALL_LABEL: tag} if small else {})}
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ExecutionPlan", "metadata": {"name": name},
            "spec": {"executable": {"type": "uri://jupyter-notebook", "location": NOTEBOOK_URL},
                     "sessions": sessions,
                     "resources": {"cores": {"min": 7}, "memory": {"min": "12Gi"}},
                     "schedule": {"duration": {"min": duration}, "start": start},
                     "nodeSelector": selector, "tolerations": [{"key": TAINT["key"], "operator": "Exists"}],
                     **spec}}


def test_the_seeds_workshop_is_booked_where_it_fits(nb, pool):
    tag, nodes = pool
    start, end = next_tuesday_window()
    nb.create(workshop("tuesday", tag, [f"{rfc3339(start)}/{rfc3339(end)}"]))
    plan, booking = nb.wait_booked("tuesday", timeout=30)
    assert phase_of(plan) == "Booked"
    assert (booking["start"], booking["end"]) == (rfc3339(start), rfc3339(end)), booking
    assert (booking["cores"], booking["memory"]) == ("210", "360Gi"), booking
    placements = booking["placements"]
    assert sorted(p["pod"] for p in placements) == sorted(f"session-{i}" for i in range(1, 31))
    per_node: dict[str, int] = {}
    for p in placements:
        assert p["node"] in nodes and (p["cores"], p["memory"]) == ("7", "12Gi"), p
        per_node[p["node"]] = per_node.get(p["node"], 0) + 1
    assert max(per_node.values()) <= 4 and sum(per_node.values()) == 30, per_node
    # Nothing is made before the lead: next Tuesday is days away.
    assert not nb.pods(plan["metadata"]["uid"]) and nb.taskrun("tuesday") is None


def test_the_seeds_workshop_is_refused_with_the_shortfall_where_it_cannot_fit(nb, pool):
    tag, _ = pool
    start, end = next_tuesday_window()
    nb.create(workshop("too-small", tag, [f"{rfc3339(start)}/{rfc3339(end)}"], small=True))
    plan = nb.wait_phase("too-small", "Rejected", timeout=30)
    status = plan["status"]
    assert status["message"] == ("30 pods of 7 cores, 12Gi each (210 cores, 360Gi in all): the 7 nodes that may run "
                                 "them hold at most 28 at once (4 each on 7 nodes); 2 short"), status["message"]
    cond = next(c for c in status["conditions"] if c["type"] == "Booked")
    assert (cond["status"], cond["reason"]) == ("False", "Unsatisfiable")
    assert not status.get("booking") and not nb.pods(plan["metadata"]["uid"])


def test_the_seeds_workshop_is_offered_the_next_start_where_it_fits_only_later(nb, pool):
    tag, _ = pool
    start, end = next_tuesday_window()
    # Another plan holds one pool node whole from 15:00 to 15:30: 28 sessions fit before, 30 after.
    blocker = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ExecutionPlan", "metadata": {"name": "blocker"},
               "spec": {"executable": {"type": "docker-container", "image": "busybox:1.36"},
                        "resources": {"cores": {"min": 32}, "memory": {"min": "8Gi"}},
                        "schedule": {"duration": {"min": "30m"}, "start": [f"{rfc3339(start)}/PT1M"]},
                        "nodeSelector": {POOL_LABEL: tag},
                        "tolerations": [{"key": TAINT["key"], "operator": "Exists"}]}}
    nb.create(blocker)
    _, held = nb.wait_booked("blocker", timeout=30)
    assert held["start"] == rfc3339(start)
    nb.create(workshop("later", tag, [f"{rfc3339(start)}/{rfc3339(end)}"], acceptPolicy="Manual"))
    plan = nb.wait_phase("later", "Offered", timeout=30)
    (offer,) = plan["status"]["offers"]
    later = start + timedelta(minutes=30)
    assert (offer["start"], offer["end"]) == (rfc3339(later), rfc3339(later + timedelta(hours=2))), offer
    assert offer["cores"] == "210" and len(offer["placements"]) == 30


def test_a_workshop_starts_every_server_with_its_own_token_and_removes_them_at_the_end(nb, pool):
    tag, nodes = pool
    start = whole_second_after(HOLD_LEAD_SECONDS + 12)  # the operator makes the servers a lead before
    nb.create(workshop("now", tag, [f"{rfc3339(start)}/PT1M"], duration="30s"))
    plan, booking = nb.wait_booked("now", timeout=30)
    uid = plan["metadata"]["uid"]
    assert booking["start"] == rfc3339(start)
    plan = nb.wait_phase("now", "Running", timeout=HOLD_LEAD_SECONDS + 40)
    assert datetime.now(timezone.utc) >= start - timedelta(seconds=1)

    selector = f"{L_UID}={uid}"
    pods = nb.core.list_namespaced_pod(nb.ns, label_selector=selector).items
    services = nb.core.list_namespaced_service(nb.ns, label_selector=selector).items
    secrets = nb.core.list_namespaced_secret(nb.ns, label_selector=selector).items
    assert len(pods) == len(services) == len(secrets) == 30, (len(pods), len(services), len(secrets))
    assert all(p.status.phase == "Running" and p.spec.node_name in nodes for p in pods)
    by_session = {int(p.metadata.labels[L_SESSION]): p for p in pods}
    assert sorted(by_session) == list(range(1, 31))
    tokens = {s.metadata.name: base64.b64decode(s.data["token"]).decode() for s in secrets}
    assert len(set(tokens.values())) == 30 and all(len(t) >= 32 for t in tokens.values())
    endpoints = plan["status"]["endpoints"]
    assert [e["session"] for e in endpoints] == list(range(1, 31))
    assert plan["status"]["endpoint"] == endpoints[0]["url"]
    services_by_name = {s.metadata.name: s for s in services}
    for e in endpoints:
        pod = by_session[e["session"]]
        service = services_by_name[pod.metadata.name]
        assert e["url"] == f"http://{service.metadata.name}.{nb.ns}.svc:8888/"
        assert service.spec.selector.items() <= pod.metadata.labels.items()
        assert e["secret"] in tokens and e["key"] == "token"
        (ref,) = [env.value_from.secret_key_ref for env in pod.spec.containers[0].env if env.name == "JUPYTER_TOKEN"]
        assert (ref.name, ref.key) == (e["secret"], "token")
        for owned in (service, next(s for s in secrets if s.metadata.name == e["secret"])):
            assert [(o.kind, o.uid) for o in owned.metadata.owner_references] == [("Pod", pod.metadata.uid)]
        assert pod.spec.containers[0].resources.requests == {"cpu": "7", "memory": "12Gi"}
        assert pod.spec.automount_service_account_token is False
    run = nb.taskrun("now")
    assert run and run["status"]["phase"] == "EXECUTING", run

    plan = nb.wait_phase("now", "Completed", timeout=60)
    assert plan["status"]["message"].startswith("the booking ended"), plan["status"]["message"]
    assert not plan["status"].get("endpoints") and not plan["status"].get("endpoint")
    assert nb.taskrun("now")["status"]["phase"] == "COMPLETED"
    gone = {"pods": nb.core.list_namespaced_pod, "services": nb.core.list_namespaced_service,
            "secrets": nb.core.list_namespaced_secret}
    for what, lister in gone.items():
        nb.wait(lambda: not lister(nb.ns, label_selector=selector).items, timeout=30,
                what=f"the workshop's {what} to be removed", names=("now",))


def test_a_batch_notebook_keeps_its_executed_notebook(nb, pool, tmp_path):
    tag, _ = pool
    executed = {"cells": [{"cell_type": "code", "execution_count": 1, "metadata": {}, "source": "print(6 * 7)",
                           "outputs": [{"name": "stdout", "output_type": "stream", "text": "42\n"}]}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    text = json.dumps(executed, indent=1)
    # On kwok nothing runs: the pod's log (the executed notebook, as nbconvert --stdout prints
    # it) is served from this file, through a Logs object named like the pod.
    log = tmp_path / "batch.log"
    log.write_text("".join(f"2026-01-01T00:00:00.000000000Z stdout F {line}\n" for line in text.splitlines()))
    client.CustomObjectsApi(nb.api).create_namespaced_custom_object(
        "kwok.x-k8s.io", "v1alpha1", nb.ns, "logs",
        {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs", "metadata": {"name": "batch"},
         "spec": {"logs": [{"containers": ["task"], "logsFile": str(log)}]}})
    body = workshop("batch", tag, [], duration="2m", sessions=1)
    body["spec"]["executable"].update({"mode": "batch", "podAnnotations": {COMPLETE: "3s"}})
    del body["spec"]["schedule"]["start"]
    nb.create(body)
    plan = nb.wait_phase("batch", "Completed", timeout=60)
    result = plan["status"]["result"]
    assert (result["configMap"], result["key"]) == ("batch-result", "gaia-dr3-intro.ipynb"), result
    assert result["size"] in (len(text.encode()), len(text.encode()) + 1), result  # (kwok ends the last line)
    cm = nb.core.read_namespaced_config_map("batch-result", nb.ns)
    assert json.loads(cm.data["gaia-dr3-intro.ipynb"]) == executed
    assert [(o.kind, o.uid) for o in cm.metadata.owner_references] == [("ExecutionPlan", plan["metadata"]["uid"])]
    assert "ConfigMap batch-result" in plan["status"]["message"]
    run = nb.taskrun("batch")
    assert run["status"]["phase"] == "COMPLETED" and run["status"]["log"]["pod"] == "batch"


@pytest.mark.parametrize("change, says", [
    ({"executable": {"type": "jupyter-notebook"}}, "location"),
    ({"executable": {"type": "jupyter-notebook", "location": "file:///etc/passwd"}}, "http or https URL"),
    ({"executable": {"type": "docker-container", "image": "busybox", "location": NOTEBOOK_URL}}, "location only"),
    ({"sessions": 3, "executable": {"type": "docker-container", "image": "busybox"}}, "sessions above 1"),
    ({"sessions": 3, "executable": {"type": "jupyter-notebook", "location": NOTEBOOK_URL, "mode": "batch"}},
     "sessions above 1"),
    ({"sessions": 1001}, "1000"),
])
def test_the_api_server_refuses_what_a_notebook_cannot_be(api, namespace, operator_kubeconfig, change, says):
    body = workshop("bad", "x", [], sessions=2)
    del body["spec"]["schedule"]["start"]
    body["spec"].update(change)
    with pytest.raises(client.ApiException) as e:
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLANS, body,
                                                                     dry_run="All")
    assert e.value.status == 422 and says in e.value.body, e.value.body
