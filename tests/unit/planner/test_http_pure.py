"""The planner's pure translations: IVOA requests into plan specs, plan phases into session
states and UWS phases, users into namespaces, static tokens."""
from __future__ import annotations

import asyncio

import pytest

from execplanner.api import ivoa
from execplanner.planner import tasks
from execplanner.planner.http.broker import offerset_result, session_state
from execplanner.planner.http.uws import job_phase
from execplanner.planner.identity import Authenticator, Unauthorized, namespace_for
from execplanner.planner.settings import PlannerSettings

EXPIRES_LATER, EXPIRED = "2099-01-01T00:00:00Z", "2000-01-01T00:00:00Z"


def plan(phase=None, offers=(), booked=None, **spec):
    status = {"phase": phase, "offers": [{"id": i, "expires": e} for i, e in offers]} if phase else {}
    if booked:
        status["booking"] = {"offer": booked}
    return {"metadata": {"name": "p"}, "spec": spec, "status": status}


@pytest.mark.parametrize("p,offer,state", [
    (plan(), "1", "PROPOSED"),
    (plan("Offered", [("1", EXPIRES_LATER)]), "1", "OFFERED"),
    (plan("Offered", [("1", EXPIRED)]), "1", "EXPIRED"),
    (plan("Offered", [("1", EXPIRES_LATER)], rejectedOffers=["1"]), "1", "REJECTED"),
    (plan("Offered", [("1", EXPIRES_LATER)], acceptedOffer="1"), "1", "ACCEPTED"),
    (plan("Booked", [("1", EXPIRES_LATER), ("2", EXPIRES_LATER)], booked="2"), "2", "WAITING"),
    (plan("Booked", [("1", EXPIRES_LATER), ("2", EXPIRES_LATER)], booked="2"), "1", "REJECTED"),
    (plan("Starting", booked="1"), "1", "PREPARING"),
    (plan("Running", booked="1"), "1", "RUNNING"),
    (plan("Completed", booked="1"), "1", "COMPLETED"),
    (plan("Failed", booked="1"), "1", "FAILED"),
    (plan("Cancelled", booked="1"), "1", "CANCELLED"),
    (plan("Cancelled", [("1", EXPIRES_LATER)]), "1", "CANCELLED"),
    (plan("Expired", [("1", EXPIRED)]), "1", "EXPIRED"),
])
def test_session_states_follow_the_plan(p, offer, state):
    assert session_state(p, offer, now=1_800_000_000) == state


def test_offerset_result():
    assert offerset_result(plan()) == "PENDING"
    assert offerset_result(plan("Rejected")) == "NO"
    assert offerset_result(plan("Offered", [("1", EXPIRES_LATER)])) == "YES"


@pytest.mark.parametrize("p,phase", [
    (plan(suspend=True), "PENDING"), (plan(), "QUEUED"), (plan("Booked"), "QUEUED"),
    (plan("Running"), "EXECUTING"), (plan("Completed"), "COMPLETED"), (plan("Failed"), "ERROR"),
    (plan("Rejected"), "ERROR"), (plan("Cancelled"), "ABORTED"),
])
def test_uws_phases_follow_the_plan(p, phase):
    assert job_phase(p) == phase


def run(phase, reason=None):
    return {"status": {"phase": phase, **({"reason": reason} if reason else {})}}


@pytest.mark.parametrize("p, r, phase", [
    # UWS 1.1: a job that exceeds its executionduration is aborted by the service: ABORTED.
    (plan("Failed"), run("ABORTED", "TimeLimitExceeded"), "ABORTED"),
    (plan("Failed"), run("ERROR", "Error"), "ERROR"),
    (plan("Failed"), None, "ERROR"),                         # it failed before it ran
    (plan("Failed"), run("EXECUTING"), "EXECUTING"),         # the run's end is on its way
    (plan("Completed"), run("COMPLETED"), "COMPLETED"),
    (plan("Cancelled"), run("ABORTED", "Aborted"), "ABORTED"),
    (plan("Running"), run("EXECUTING"), "EXECUTING"),
])
def test_uws_phases_read_the_run_too(p, r, phase):
    assert job_phase(p, r) == phase


def test_a_chart_offer_set_request_becomes_a_helm_chart_plan():
    req = tasks.read_offerset({"executable": {"type": "uri://kubernetes-helm", "chart": "gaia", "version": "1.0",
                                              "repository": "https://charts.example.org", "values": {"n": 3}},
                               "resources": {"compute": [{"memory": {"requested": {"min": 360, "max": 400}}}]},
                               "schedule": {"requested": {"duration": "PT9H"}}}, 3)
    assert req.spec["executable"] == {"type": "helm-chart", "chart": "gaia", "version": "1.0",
                                      "repository": "https://charts.example.org", "values": {"n": 3}}
    assert req.spec["resources"] == {"cores": {"min": "100000", "max": "100000"},
                                     "memory": {"min": "360Gi", "max": "400Gi"}}  # caps: cores not asked, none
    assert req.requested == {"compute": {"memory": {"min": 360, "max": 400}}, "schedule": {"duration": "PT9H"}}
    assert "resources" not in tasks.read_offerset({"executable": {"type": "helm-chart", "chart": "x"}}, 1).spec


@pytest.mark.parametrize("requested, field", [
    ({"memory": {"requested": {"min": 1, "units": "GiBs"}}}, "resources.compute[0].memory.requested.units"),
    ({"cores": {"requested": {"min": 1, "units": "MiB"}}}, "resources.compute[0].cores.requested.units"),
    ({"memory": {"requested": {"min": 512, "units": "kB"}}}, "resources.compute[0].memory.requested.min"),
])
def test_memory_units_are_the_drafts(requested, field):
    with pytest.raises(tasks.BadRequest) as e:
        tasks.read_offerset({"executable": {"type": ivoa.EB_DOCKER, "image": "x"},
                             "resources": {"compute": [requested]}}, 1)
    assert e.value.field == field
    spec = tasks.read_offerset({"executable": {"type": ivoa.EB_DOCKER, "image": "x"}, "resources": {"compute": [
        {"memory": {"requested": {"min": 1500, "units": "MB"}}}]}}, 1).spec
    assert spec["resources"]["memory"] == {"min": "1500M", "max": "1500M"}


def test_offerset_request_becomes_a_manual_plan():
    req = tasks.read_offerset({
        "name": "gaia", "executable": {"type": ivoa.EB_DOCKER, "image": {"name": "ghcr.io/x/y", "tag": "1.0"},
                                       "entrypoint": ["run"], "environment": {"A": 1}},
        "resources": {"compute": [{"type": ivoa.EB_SIMPLE_COMPUTE, "cores": {"requested": {"min": 2, "max": 8}},
                                   "memory": {"requested": {"min": 4, "max": "16Gi"}}}]},
        "schedule": {"requested": {"duration": "PT2H", "start": ["2026-11-24T15:00:00Z/PT2H"]}}}, 3)
    spec = req.spec
    assert spec["executable"] == {"type": ivoa.EB_DOCKER, "image": "ghcr.io/x/y:1.0", "command": ["run"],
                                  "env": [{"name": "A", "value": "1"}]}
    assert spec["resources"] == {"cores": {"min": "2", "max": "8"}, "memory": {"min": "4Gi", "max": "16Gi"}}
    assert spec["schedule"] == {"duration": {"min": "PT2H", "max": "PT2H"}, "start": ["2026-11-24T15:00:00Z/PT2H"]}
    assert spec["acceptPolicy"] == "Manual" and spec["offers"] == 3


def test_minimal_asks_for_the_minimum():
    req = tasks.read_offerset({"executable": {"type": ivoa.EB_DOCKER, "image": "x"}, "resources": {"compute": [
        {"cores": {"requested": {"min": 2, "max": 8, "minimal": True}}}]}}, 1)
    assert req.spec["resources"]["cores"] == {"min": "2", "max": "2"}


def test_note_task_defaults_and_startup_window():
    task = tasks.read_note_task({"tasktype": "uri://docker-container", "taskinfo": {"image": "x"},
                                 "resources": {"minstartup": "0s", "maxstartup": "60s"}}, 3600)
    assert (task.cores.min, task.memory.min, task.duration.min) == (1000, 2 ** 30, 3600)
    assert tasks.note_request(task, now=100).windows == ((100, 160),)


def test_uws_parameters():
    spec, kept = tasks.uws_spec({"image": ["busybox"], "cmd": ["echo", "hi"], "cores": ["500m"], "duration": ["90"]},
                                3600)
    assert spec["executable"]["command"] == ["echo", "hi"]
    assert spec["resources"]["cores"] == {"min": "500m"} and spec["schedule"]["duration"] == {"min": "PT1M30S"}
    assert kept["cmd"] == ["echo", "hi"]
    with pytest.raises(tasks.BadRequest, match="image"):
        tasks.uws_spec({"image": ["a", "b"]}, 3600)


def test_namespaces_are_dns_safe_and_distinct():
    s = PlannerSettings(namespace_template="xp-{user}", namespace_map={"root": "admin-space"})
    assert namespace_for("alice", s) == "xp-alice"
    assert namespace_for("root", s) == "admin-space"
    odd, other = namespace_for("Alice@Example.org", s), namespace_for("alice-example-org", s)
    assert odd.startswith("xp-alice-example-org-") and odd != other
    assert len(namespace_for("x" * 300, s)) <= 63


def test_static_tokens(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# token,user\nabc123,carol,uid-1\n")
    auth = Authenticator(PlannerSettings(token_file=str(path)))
    who = asyncio.run(auth.identify("Bearer abc123"))
    assert (who.user, who.namespace) == ("carol", "xp-carol")
    assert asyncio.run(auth.identify(None)) is None
    for bad in ("Bearer nope", "Basic abc123", "Bearer "):
        with pytest.raises(Unauthorized):
            asyncio.run(auth.identify(bad))


@pytest.mark.parametrize("body, field", [
    ({"tasktype": "uri://docker-container", "taskinfo": {"image": "x", "values": [1]}}, "taskinfo.values"),
    ({"tasktype": "uri://docker-container", "taskinfo": "busybox"}, "taskinfo"),
])
def test_note_tasks_are_shaped_by_the_wire_model(body, field):
    with pytest.raises(tasks.BadRequest) as e:
        tasks.read_note_task(body, 3600)
    assert e.value.field == field


def test_offer_sets_are_shaped_by_the_wire_model():
    body = {"executable": {"type": ivoa.EB_DOCKER, "image": "busybox", "environment": {"A": ["not", "text"]}}}
    with pytest.raises(tasks.BadRequest) as e:
        tasks.read_offerset(body, 1)
    assert e.value.field == "executable.environment.A"
