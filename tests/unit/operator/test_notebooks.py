"""Notebook tasks without a cluster: the spec, the engine request of a workshop (its sessions
booked all or nothing), the objects made per session, the result of a batch notebook, and
what the operator reads of the sessions' pods."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from execplanner.api import labels
from execplanner.api.plan import EB_NOTEBOOK, NotebookMode, PlanSpec
from execplanner.engine import Calendar, Resources, format_instant, parse_instant
from execplanner.engine.specs import plan_request
from execplanner.operator import booking, children, notebook
from execplanner.operator.lifecycle import Finish, Launch, Observation, Task, decide
from execplanner.operator.planrecord import Plan
from execplanner.operator.settings import Settings
from execplanner.operator.state import State, TaskPod
from execplanner.operator.taskkind import BATCH_NOTEBOOK, CONTAINER, NOTEBOOK, kind_of

GI = 1 << 30
T0 = parse_instant("2026-11-24T15:00:00Z", "t")  # a Tuesday, 15:00
WINDOW = "2026-11-24T15:00:00Z/2026-11-24T17:00:00Z"
PLAN = {"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan",
        "metadata": {"name": "workshop", "namespace": "alice", "uid": "u-1"}}


def spec(sessions: int = 30, mode: str | None = None, top: dict | None = None, **exe) -> PlanSpec:
    executable = {"type": "jupyter-notebook", "location": "https://example.org/tutorials/gaia.ipynb", **exe}
    if mode:
        executable["mode"] = mode
    return PlanSpec.model_validate({
        **(top or {}), "executable": executable, "sessions": sessions,
        "resources": {"cores": {"min": 7, "max": 8}, "memory": {"min": "12Gi", "max": "16Gi"}},
        "schedule": {"duration": {"min": "2h"}, "start": [WINDOW]}})


def cluster(nodes: int, cpu: int = 16, memory: int = 64) -> Calendar:
    cal = Calendar()
    for i in range(nodes):
        cal.set_node(f"n{i:02d}", Resources(cpu * 1000, memory * GI, 0, 0, 110))
    return cal


# -- the spec -------------------------------------------------------------------------------

@pytest.mark.parametrize("type_", ["jupyter-notebook", "uri://jupyter-notebook", EB_NOTEBOOK])
def test_the_three_names_of_the_notebook_type(type_):
    s = spec(type=type_)
    assert s.executable.is_notebook and not s.executable.is_container and not s.executable.is_helm
    assert not s.executable.is_batch and s.executable.mode is None  # interactive by default
    assert spec(sessions=1, mode="batch").executable.is_batch
    assert spec().sessions == 30 and PlanSpec.model_validate(
        {"executable": {"type": "docker-container", "image": "busybox"},
         "resources": {"cores": {"min": 1}, "memory": {"min": "1Gi"}},
         "schedule": {"duration": {"min": "1m"}}}).sessions == 1


def test_sessions_are_bounded():
    with pytest.raises(ValidationError):
        spec(sessions=0)
    with pytest.raises(ValidationError):
        spec(sessions=1001)
    assert NotebookMode("batch") is NotebookMode.BATCH


def test_each_kind_of_plan_has_its_task_kind():
    assert kind_of(spec()) is NOTEBOOK
    assert kind_of(spec(sessions=1, mode="batch")) is BATCH_NOTEBOOK
    assert kind_of(PlanSpec.model_validate({"executable": {"type": "docker-container", "image": "b"},
                                            "resources": {"cores": {"min": 1}, "memory": {"min": "1Gi"}},
                                            "schedule": {"duration": {"min": "1m"}}})) is CONTAINER


# -- the engine request: a workshop is all or nothing ------------------------------------------

def test_a_workshop_is_a_pod_set_of_identical_sessions_of_the_minimum():
    r = plan_request(spec(top={"nodeSelector": {"pool": "w"}}))
    assert r.pods is not None and len(r.pods) == 30
    assert [p.name for p in r.pods[:3]] == ["session-1", "session-2", "session-3"]
    assert {p.requests for p in r.pods} == {Resources(7000, 12 * GI, 0, 0, 1)}
    assert all(dict(p.node_selector) == {"pool": "w"} for p in r.pods)
    assert r.windows == ((T0, T0 + 7200),) and r.duration.min == 7200
    one = plan_request(spec(sessions=1))  # one session: sized up like a container
    assert one.pods is None and one.name == "session-1" and (one.cpu.min, one.cpu.max) == (7000, 8000)
    assert plan_request(spec(sessions=1, mode="batch")).name == "main"


def test_the_seeds_workshop_is_booked_where_it_fits():
    # 30 sessions of 7 cores / 12Gi (210 cores) for 2 h from Tuesday 15:00: two per 16-core node.
    cal = cluster(15)
    made = booking.book_first(cal, "u-1", "alice", spec(), T0 - 86400, [], plan_request(spec()))
    assert not isinstance(made, booking.Rejected), made
    assert (made["start"], made["end"]) == ("2026-11-24T15:00:00Z", "2026-11-24T17:00:00Z")
    assert made["cores"] == "210" and made["memory"] == "360Gi"
    assert sorted(p["pod"] for p in made["placements"]) == sorted(f"session-{i}" for i in range(1, 31))
    per_node: dict[str, int] = {}
    for p in made["placements"]:
        per_node[p["node"]] = per_node.get(p["node"], 0) + 1
        assert (p["cores"], p["memory"]) == ("7", "12Gi")
    assert set(per_node.values()) == {2} and len(per_node) == 15
    assert not cal.check_invariant()


def test_a_cluster_too_small_refuses_it_with_the_shortfall():
    cal = cluster(4)  # 4 x 16 cores: at most 2 sessions a node, 8 in all
    made = booking.book_first(cal, "u-1", "alice", spec(), T0 - 86400, [], plan_request(spec()))
    assert isinstance(made, booking.Rejected)
    assert made.message == ("30 pods of 7 cores, 12Gi each (210 cores, 360Gi in all): the 4 nodes that may run them "
                            "hold at most 8 at once (2 each on 4 nodes); 22 short"), made.message
    assert not cal.bookings


def test_a_workshop_that_fits_only_later_is_offered_the_later_start():
    cal = cluster(15)
    # Another booking holds one node's 16 cores until 15:30: 28 sessions fit before, 30 from then on.
    cal.book("other", "bob", [("n00", Resources(16000, 8 * GI, 0, 0, 1))], T0 - 3600, T0 + 1800)
    r = plan_request(spec())
    result = cal.offers(r, T0 - 86400, count=1, namespace="alice")
    (offer,) = result.offers
    assert (format_instant(offer.start), format_instant(offer.end)) == ("2026-11-24T15:30:00Z", "2026-11-24T17:30:00Z")
    # The other booking outlasting the window: refused, with how many fit at best and where.
    cal.release("other")
    cal.book("other", "bob", [("n00", Resources(16000, 8 * GI, 0, 0, 1))], T0 - 3600, T0 + 4 * 3600)
    result = cal.offers(r, T0 - 86400, count=1, namespace="alice")
    assert not result.offers
    assert result.reasons[0].message == (
        "30 pods of 7 cores, 12Gi each (210 cores, 360Gi in all): at most 28 fit at once at any start in the "
        "windows (the most from 2026-11-24T15:00:00Z: 2 each on 14 nodes); 2 short")


# -- what is made per session ------------------------------------------------------------------

def test_a_session_has_its_server_service_and_token_secret():
    s, vector = spec(env=[{"name": "SURVEY", "value": "gaia"}]), Resources(7000, 12 * GI, 0, 0, 1)
    pod = children.session_pod(PLAN, s, 3, "n01", vector, T0, T0 + 7200, T0 - 30, Settings())
    meta, pspec = pod["metadata"], pod["spec"]
    assert meta["name"] == "workshop-session-3" and meta["ownerReferences"][0]["uid"] == "u-1"
    assert meta["labels"][labels.SESSION] == "3" and meta["labels"][labels.PLAN_UID] == "u-1"
    assert meta["labels"][labels.ROLE] == labels.ROLE_TASK
    (c,) = pspec["containers"]
    assert c["image"] == Settings().notebook_image and c["ports"][0]["containerPort"] == 8888
    assert c["resources"]["requests"] == c["resources"]["limits"] == {"cpu": "7", "memory": "12Gi"}
    env = {e["name"]: e for e in c["env"]}
    assert env["NOTEBOOK_LOCATION"]["value"] == "https://example.org/tutorials/gaia.ipynb"
    assert env["NOTEBOOK_FILE"]["value"] == "gaia.ipynb" and env["SURVEY"]["value"] == "gaia"
    assert env["JUPYTER_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "workshop-session-3-token", "key": "token"}}
    assert "NOTEBOOK_LOCATION" in c["command"][-1] and "example.org" not in c["command"][-1]  # never in the script
    assert pspec["automountServiceAccountToken"] is False and pspec["restartPolicy"] == "OnFailure"
    assert pspec["activeDeadlineSeconds"] == 7230 and pspec["nodeSelector"] == {"kubernetes.io/hostname": "n01"}
    assert pspec["initContainers"][0]["name"] == children.WAITER_CONTAINER
    made = {"metadata": {"name": meta["name"], "uid": "pod-uid-3"}}
    svc = children.session_service(PLAN, 3, made)
    assert svc["metadata"]["name"] == "workshop-session-3" and svc["spec"]["ports"][0]["port"] == 8888
    assert svc["spec"]["selector"] == {labels.PLAN_UID: "u-1", labels.SESSION: "3"}
    assert svc["spec"]["selector"].items() <= meta["labels"].items()
    secret = children.session_secret(PLAN, 3, made, "tok")
    assert secret["metadata"]["name"] == "workshop-session-3-token" and secret["stringData"] == {"token": "tok"}
    for obj in (svc, secret):  # they go with the session's pod
        assert obj["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Pod",
                                                       "name": "workshop-session-3", "uid": "pod-uid-3"}]
    assert children.session_url(PLAN, 3) == "http://workshop-session-3.alice.svc:8888/"


def test_session_names_are_dns_labels_that_never_collide():
    assert children.session_name("ws", 1) == "ws-session-1"
    odd = [children.session_name(n, 1000, "-token") for n in ("1ws", "w.s", "w-s", "x" * 80)]
    assert len(set(odd)) == 4 and all(len(n) <= 63 and n[0].isalpha() for n in odd), odd
    assert children.notebook_file("https://x.org/a/b.ipynb?raw=1") == "b.ipynb"
    assert children.notebook_file("https://x.org/nb") == children.notebook_file("https://x.org/a b.ipynb") == \
        "notebook.ipynb"


def test_a_batch_notebook_runs_top_to_bottom_in_one_pod():
    s = spec(sessions=1, mode="batch", image="docker.io/jupyter/scipy-notebook:2023-10-20")
    pod = children.batch_pod(PLAN, s, "workshop", "n01", Resources(8000, 16 * GI, 0, 0, 1), T0, T0 + 7200, T0 - 30,
                             Settings())
    (c,) = pod["spec"]["containers"]
    assert pod["metadata"]["name"] == "workshop" and labels.SESSION not in pod["metadata"]["labels"]
    assert c["image"] == "docker.io/jupyter/scipy-notebook:2023-10-20" and c["name"] == children.TASK_CONTAINER
    assert "nbconvert" in c["command"][-1] and "--execute" in c["command"][-1] and "--stdout" in c["command"][-1]
    assert "JUPYTER_TOKEN" not in {e["name"] for e in c["env"]} and pod["spec"]["restartPolicy"] == "Never"
    cm = children.result_config_map(PLAN, "gaia.ipynb", "{}")
    assert cm["metadata"]["name"] == "workshop-result" and cm["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    assert cm["data"] == {"gaia.ipynb": "{}"}


def test_the_executed_notebook_is_read_from_the_log():
    nb = json.dumps({"cells": [{"cell_type": "code", "source": "1+1", "outputs": []}], "nbformat": 4}, indent=1)
    assert notebook.executed_notebook(nb.encode()) == nb
    assert notebook.executed_notebook(("warning: something\n" + nb).encode()) == nb
    assert notebook.executed_notebook(b"kwok: fake node, no real process ran\n") is None
    assert notebook.executed_notebook(b'{"not": "a notebook"}') is None
    assert notebook.executed_notebook(b"\xff\xfe") is None


# -- what the operator reads of the sessions -----------------------------------------------------

def booked_plan(st: State, sessions: int = 3) -> Plan:
    placements = [{"pod": f"session-{i}", "node": "n00", "cores": "7", "memory": "12Gi", "gpus": 0}
                  for i in range(1, sessions + 1)]
    body = {**PLAN, "status": {"phase": "Booked", "booking": {
        "start": format_instant(T0), "end": format_instant(T0 + 7200), "placements": placements}}}
    return Plan(body, st)


def pod(i: int, phase: str = "Pending", **kw) -> TaskPod:
    return TaskPod(f"workshop-session-{i}", phase, "n00", **kw)


def test_sessions_are_seen_made_held_running_partial_failed_and_gone():
    st = State.new(Settings())
    plan, s, seen = booked_plan(st), spec(sessions=3), st.of("u-1")
    assert NOTEBOOK.observe(plan, s, T0).task is Task.ABSENT
    seen.sessions_made |= {1, 2}  # a launch cut short (or a restart, which remembers nothing)
    assert NOTEBOOK.observe(plan, s, T0).task is Task.PARTIAL
    seen.sessions_made.add(3)
    assert NOTEBOOK.observe(plan, s, T0).task is Task.HELD
    seen.session_pods.update({i: pod(i, "Running") for i in (1, 2, 3)})
    seen_now = NOTEBOOK.observe(plan, s, T0)
    assert seen_now.task is Task.RUNNING and not seen_now.completes and "3 notebook server(s)" in seen_now.message
    seen.session_pods[2] = pod(2, "Failed", exit_code=1, reason="Error")  # one server failing is not the workshop's end
    assert NOTEBOOK.observe(plan, s, T0).task is Task.HELD
    seen.session_pods.update({i: pod(i, "Failed", exit_code=2) for i in (1, 2, 3)})
    assert NOTEBOOK.observe(plan, s, T0).task is Task.FAILED
    # Stopped by the kubelet at the end (the deadline): still the workshop ending as booked.
    seen.session_pods.update({i: pod(i, "Failed", deadline_exceeded=True) for i in (1, 2, 3)})
    assert NOTEBOOK.observe(plan, s, T0 + 7200).task is Task.HELD
    seen.session_pods.clear()
    seen.sessions_made.clear()
    seen.sessions_gone |= {1, 2, 3}
    assert NOTEBOOK.observe(plan, s, T0).task is Task.GONE
    assert notebook.booked_sessions(plan).keys() == {1, 2, 3}
    assert [e["url"] for e in notebook.endpoints(plan, [1, 2])] == [
        "http://workshop-session-1.alice.svc:8888/", "http://workshop-session-2.alice.svc:8888/"]


def test_a_launch_cut_short_is_launched_again_and_servers_end_with_the_booking():
    start, end, lead = T0, T0 + 7200, 30
    partial = Observation(Task.PARTIAL, completes=False)
    assert decide("Booked", start, end, start - 20, lead, partial) == Launch()
    assert decide("Running", start, end, start + 60, lead, partial) == Launch()  # (a restart while running)
    done = decide("Running", start, end, end, lead, Observation(Task.RUNNING, completes=False))
    assert isinstance(done, Finish) and (done.phase, done.reason, done.stop) == ("Completed", "BookingEnded", True)
