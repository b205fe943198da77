"""The IVOA answers as the documents write them (issue 17), at the HTTP level over the fake
service: every answer of /accepts, /offersets and /sessions here is also held to the
documents' schemas (ivoa_schemas.py, through fake_service.CheckedClient).

- /accepts: cores as numbers; durations (and memory) in the form asked; a blank maximum offered
  up to what is free, at most the minimum times the headroom (the note's own examples).
- /offersets, /sessions: `requested` echoed as sent; `offered` as integers, memory in GiB;
  messages as the draft's MessageItem; alternatives at distinct starts; Helm charts.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from yarl import URL

from execplanner.cluster import allowlist
from execplanner.cluster.allowlist import AllowlistSettings
from execplanner.engine import Resources, parse_instant

from . import ivoa_schemas
from .fake_service import bearer, client_for, make_offers, make_service

EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"
ALICE = bearer("token-alice")


def container(**resources) -> dict:
    return {"tasktype": "uri://docker-container", "taskinfo": {"image": "busybox:1.36"}, "resources": resources}


async def ask(tmp_path: Path, body: dict, **settings) -> dict:
    client = await client_for(make_service(tmp_path, **settings))
    try:
        r = await client.post("/accepts", json=body)
        assert r.status == 200, await r.text()
        return await r.json()
    finally:
        await client.close()


# -- /accepts --------------------------------------------------------------------------------------

async def test_blank_maxima_are_offered_up_to_the_headroom_as_in_the_note(tmp_path):
    # The note: 8 cores, 8G, 10m asked with blank maxima; up to 10 cores, 10G, 20m offered.
    answer = await ask(tmp_path, container(mincores=8, minmemory="8G", minduration="10m"))
    assert answer["reponseword"] == answer["responseword"] == "YES", answer
    assert answer["resources"] == {"mincores": 8, "maxcores": 10, "minmemory": "8G", "maxmemory": "10G",
                                   "minduration": "10m", "maxduration": "20m", "minstartup": "0m",
                                   "maxstartup": "0m"}
    assert type(answer["resources"]["mincores"]) is int and type(answer["resources"]["maxcores"]) is int
    # Maxima that are given are kept to; the headroom is the planner's setting.
    answer = await ask(tmp_path, container(mincores=2, maxcores=6, minmemory="1Gi", maxmemory="2Gi",
                                           minduration="1h", maxduration="90m"))
    assert (answer["resources"]["maxcores"], answer["resources"]["maxmemory"],
            answer["resources"]["maxduration"]) == (6, "2Gi", "90m")
    answer = await ask(tmp_path, container(mincores=8, minmemory="8G", minduration="10m"), accepts_headroom=1,
                       accepts_duration_headroom=1)
    assert (answer["resources"]["maxcores"], answer["resources"]["maxmemory"],
            answer["resources"]["maxduration"]) == (8, "8G", "10m")


async def test_the_gaia_example_offers_what_is_free_up_to_the_headroom(tmp_path):
    """The note's Gaia answer: 220 cores, 360G, 9h asked; 240 cores, 400G, 9h30m offered (what
    is free: one node of 240 cores and 400G, taken from 9h30m on)."""
    svc = make_service(tmp_path)
    cal = svc.cache.calendar
    for name in ("n1", "n2"):
        cal.remove_node(name)
    cal.set_node("big", Resources(240_000, 400 * 10 ** 9, 0, 0, 110), {})
    now = int(time.time())
    cal.book("later", "other", [("big", Resources(1000, 10 ** 9, 0, 0, 1))], now + 9 * 3600 + 30 * 60 + 40,
             now + 20 * 3600)
    client = await client_for(svc)
    try:
        r = await client.post("/accepts", json=container(mincores=220, minmemory="360G", minduration="9h"))
        resources = (await r.json())["resources"]
    finally:
        await client.close()
    assert (resources["mincores"], resources["maxcores"], resources["minmemory"], resources["maxmemory"],
            resources["minduration"], resources["maxduration"]) == (220, 240, "360G", "400G", "9h", "9h30m")


@pytest.mark.parametrize("asked, offered", [
    ({"minduration": "PT10M"}, {"minduration": "PT10M", "maxduration": "PT20M"}),
    ({"minduration": 600}, {"minduration": 600, "maxduration": 1200}),
    ({"minduration": "600"}, {"minduration": "600", "maxduration": "1200"}),
    ({"minduration": "90m"}, {"minduration": "90m", "maxduration": "180m"}),
    ({"minduration": "1h30m"}, {"minduration": "1h30m", "maxduration": "3h"}),
    ({"minduration": "2h", "maxduration": "PT3H"}, {"minduration": "2h", "maxduration": "PT3H"}),
    ({"minduration": "10m", "maxstartup": "60s"}, {"minduration": "10m", "maxstartup": "60s", "minstartup": "0s"}),
])
async def test_durations_are_answered_in_the_form_asked(tmp_path, asked, offered):
    answer = await ask(tmp_path, container(**asked))
    assert answer["responseword"] == "YES", answer
    assert {k: answer["resources"][k] for k in offered} == offered


async def test_no_answers_and_task_types_conform_too(tmp_path):
    answer = await ask(tmp_path, container(mincores=200, minmemory="8G", minduration="9h"))
    assert answer["reponseword"] == "NO" and answer["reponseinfo"]["reasons"], answer
    assert answer["resources"]["mincores"] == 200 and answer["resources"]["minduration"] == "9h"
    assert answer["resources"]["maxstartup"] == "168h"  # a blank maxstartup: the planner's horizon
    client = await client_for(make_service(tmp_path))
    try:
        for tasktype in ("uri://docker-container", "uri://kubernetes-helm", "uri://zeppelin-notebook"):
            r = await client.get("/accepts", params={"tasktype": tasktype})
            assert r.status == 200 and (await r.json())["reponseword"] in ("YES", "NO")
    finally:
        await client.close()


def test_the_schemas_catch_what_the_issue_describes():
    """The schemas are not vacuous: each of the old answers' departures fails them."""
    note = {"reponseword": "YES", "responseword": "YES", "servicetype": "uri://docker-uws",
            "serviceinfo": {"endpoint": "http://x/uws/jobs"}, "resources": {"mincores": "8", "maxcores": "8"}}
    assert ivoa_schemas.problems(ivoa_schemas.NOTE_ANSWER, note)
    assert not ivoa_schemas.problems(ivoa_schemas.NOTE_ANSWER, {**note, "resources": {"mincores": 8, "maxcores": 8}})
    assert ivoa_schemas.problems(ivoa_schemas.NOTE_ANSWER, {"reponseword": "NO", "responseword": "NO"})  # no reasons
    session = {"uuid": "6f1b3c2e-0a4b-4c1d-9e2f-1a2b3c4d5e6f", "href": "http://x/sessions/1", "state": "OFFERED",
               "resources": {"compute": [{"type": ivoa_schemas.SIMPLE_COMPUTE,
                                          "cores": {"offered": {"min": "4", "max": "4"}}}]}}
    assert ivoa_schemas.problems(ivoa_schemas.EXECUTION_SESSION_RESPONSE, session)
    session["resources"]["compute"][0]["cores"]["offered"] = {"min": 4, "max": 4}
    assert not ivoa_schemas.problems(ivoa_schemas.EXECUTION_SESSION_RESPONSE, session)
    assert ivoa_schemas.problems(ivoa_schemas.EXECUTION_SESSION_RESPONSE, {**session, "messages": ["text"]})
    assert ivoa_schemas.problems(ivoa_schemas.EXECUTION_SESSION_RESPONSE,
                                 {**session, "schedule": {"requested": {"duration": {"min": "PT1H"}}}})
    offerset = {"uuid": session["uuid"], "href": "http://x/offersets/1", "offers": [session]}
    assert ivoa_schemas.problems(ivoa_schemas.OFFER_SET_RESPONSE, {**offerset, "result": "PENDING"})
    assert ivoa_schemas.problems(ivoa_schemas.OFFER_SET_RESPONSE, {**offerset, "result": "YES"})  # no expires
    assert not ivoa_schemas.problems(ivoa_schemas.OFFER_SET_RESPONSE,
                                     {**offerset, "result": "YES", "expires": "2026-01-01T00:00:00Z"})


# -- /offersets and /sessions -------------------------------------------------------------------------

def offerset(cores=(2, 4), memory=(2, 4), duration="PT30M", starts=None, count=3, **extra) -> dict:
    body = {"name": "test", "executable": {"type": EB_DOCKER, "image": "busybox:1.36"},
            "resources": {"compute": [{"type": ivoa_schemas.SIMPLE_COMPUTE,
                                       "cores": {"requested": {"min": cores[0], "max": cores[1]}},
                                       "memory": {"requested": {"min": memory[0], "max": memory[1]}}}]},
            "schedule": {"requested": {"duration": duration, **({"start": starts} if starts else {})}},
            "offers": count}
    body.update(extra)
    return body


async def offers_for(client, svc, body: dict) -> dict:
    r = await client.post("/offersets", json=body, headers=ALICE, allow_redirects=False)
    assert r.status == 303, await r.text()
    location = URL(r.headers["Location"]).path
    pending = await (await client.get(location, headers=ALICE)).json()
    assert "result" not in pending and pending["offers"] == [], pending  # being prepared: no result yet
    assert pending["messages"][0]["level"] == "INFO" and pending["messages"][0]["message"], pending
    make_offers(svc, int(time.time()))
    return await (await client.get(location, headers=ALICE)).json()


async def test_sessions_echo_what_was_requested_and_offer_integers(tmp_path):
    svc = make_service(tmp_path)
    client = await client_for(svc)
    try:
        starts = ["2099-01-01T10:00:00Z/PT2H"]
        body = offerset(cores=(2, 4), memory=(2, 4), duration="PT30M", starts=starts, count=1)
        body["resources"]["compute"][0]["cores"]["requested"]["minimal"] = False
        doc = await offers_for(client, svc, body)
        assert doc["result"] == "YES" and doc["expires"] and len(doc["offers"]) == 1, doc
        (session,) = doc["offers"]
        compute = session["resources"]["compute"][0]
        assert compute["cores"] == {"requested": {"min": 2, "max": 4, "minimal": False}, "offered": {"min": 4, "max": 4}}
        assert compute["memory"] == {"requested": {"min": 2, "max": 4}, "offered": {"min": 4, "max": 4}}
        assert session["schedule"]["requested"] == {"duration": "PT30M", "start": starts}
        # Memory that is not a whole number of GiB: whole numbers of a unit of the draft's.
        body = offerset(cores=(1, 1), count=1)
        body["resources"]["compute"][0]["memory"]["requested"] = {"min": 512, "max": 1536, "units": "MiB"}
        doc = await offers_for(client, svc, body)
        compute = doc["offers"][0]["resources"]["compute"][0]
        assert compute["memory"] == {"requested": {"min": 512, "max": 1536, "units": "MiB"},
                                     "offered": {"min": 1536, "max": 1536, "units": "MiB"}}
        assert svc.kube.created[-1]["spec"]["resources"]["memory"] == {"min": "512Mi", "max": "1536Mi"}
        # Nothing requested: nothing echoed, the defaults offered.
        doc = await offers_for(client, svc, {"executable": {"type": EB_DOCKER, "image": "busybox"}, "offers": 1})
        compute = doc["offers"][0]["resources"]["compute"][0]
        assert compute["cores"] == {"offered": {"min": 1, "max": 1}} and compute["memory"] == {
            "offered": {"min": 1, "max": 1}}
        assert doc["offers"][0]["schedule"]["requested"] == {}
        # The lists conform as well, and accepting one answers the session.
        sessions = (await (await client.get("/sessions", headers=ALICE)).json())["sessions"]
        assert len(sessions) == 3
        assert len((await (await client.get("/offersets", headers=ALICE)).json())["offersets"]) == 3
        r = await client.post(URL(sessions[0]["href"]).path, headers=ALICE,
                              json={"update": {"type": "uri:enum-value-update", "path": "state", "value": "ACCEPTED"}})
        assert r.status == 200 and (await r.json())["state"] == "ACCEPTED"
    finally:
        await client.close()


async def test_alternatives_come_at_distinct_starts(tmp_path):
    """Asked for three offers of a fixed size, the largest there is: three slots in time, not one."""
    svc = make_service(tmp_path)
    client = await client_for(svc)
    try:
        doc = await offers_for(client, svc, offerset(cores=(16, 16), memory=(8, 8), duration="PT1H", count=3))
        starts = [parse_instant(s["schedule"]["executing"]["start"].split("/")[0], "start") for s in doc["offers"]]
        assert len(starts) == 3 and len(set(starts)) == 3, doc
        # Each once the one before has ended: all three can be held at once.
        assert [b - a for a, b in zip(starts, starts[1:])] == [3600, 3600]
    finally:
        await client.close()


async def test_a_refused_offer_set_says_no_with_messages(tmp_path):
    svc = make_service(tmp_path)
    client = await client_for(svc)
    try:
        doc = await offers_for(client, svc, offerset(cores=(64, 64), count=2))
        assert doc["result"] == "NO" and doc["offers"] == [] and "expires" not in doc, doc
        assert doc["messages"][0]["level"] == "WARN" and "cpu" in doc["messages"][0]["message"], doc
    finally:
        await client.close()


# -- Helm charts through the ExecutionBroker API ------------------------------------------------------

def allow(monkeypatch, repositories: list[str]) -> None:
    monkeypatch.setattr(allowlist, "settings", lambda: AllowlistSettings(
        allowed_registries=[], allowed_chart_repositories=repositories, allow_local_charts=False))


async def test_a_chart_offer_set_is_a_helm_chart_plan(tmp_path, monkeypatch):
    allow(monkeypatch, ["https://charts.example.org"])
    svc = make_service(tmp_path)
    client = await client_for(svc)
    try:
        chart = {"type": "uri://kubernetes-helm", "chart": "gaia", "repository": "https://charts.example.org",
                 "version": "1.0.0", "values": {"replicas": 3}}
        doc = await offers_for(client, svc, {"name": "gaia", "executable": chart,
                                             "schedule": {"requested": {"duration": "PT9H"}}, "offers": 2})
        plan = svc.kube.created[-1]  # type: ignore[attr-defined]
        assert plan["spec"]["executable"] == {"type": "helm-chart", "chart": "gaia", "version": "1.0.0",
                                              "repository": "https://charts.example.org", "values": {"replicas": 3}}
        assert "resources" not in plan["spec"] and plan["spec"]["acceptPolicy"] == "Manual"
        # Sized from the chart's pods (here the stand-in footprint: 3 pods of 2 cores and 1Gi).
        assert doc["result"] == "YES" and len(doc["offers"]) == 2, doc
        for session in doc["offers"]:
            compute = session["resources"]["compute"][0]
            assert compute["cores"] == {"offered": {"min": 6, "max": 6}}
            assert compute["memory"] == {"offered": {"min": 3, "max": 3}}
            assert session["executable"] == chart
        # Compute resources, when given, cap the chart (the other one caps nothing).
        body = {"executable": chart, "resources": {"compute": [{"cores": {"requested": {"min": 4, "max": 8}}}]}}
        r = await client.post("/offersets", json=body, headers=ALICE, allow_redirects=False)
        assert r.status == 303, await r.text()
        resources = svc.kube.created[-1]["spec"]["resources"]  # type: ignore[attr-defined]
        assert resources["cores"] == {"min": "4", "max": "8"} and resources["memory"]["min"] == "1Pi"
    finally:
        await client.close()


@pytest.mark.parametrize("executable, status, field", [
    ({"type": "helm-chart", "chart": "gaia", "repository": "https://elsewhere.example.org"}, 403,
     "executable.repository"),
    ({"type": "helm-chart", "chart": "https://elsewhere.example.org/gaia-1.0.0.tgz"}, 403, "executable.chart"),
    ({"type": "helm-chart", "chart": "--values=/etc/passwd", "repository": "https://charts.example.org"}, 400,
     "executable.chart"),
    ({"type": "helm-chart", "repository": "https://charts.example.org"}, 400, "executable.chart"),
    ({"type": "uri://kubernetes-helm", "chart": "gaia", "values": ["not", "a", "map"]}, 400, "executable.values"),
])
async def test_charts_are_refused_naming_the_field(tmp_path, monkeypatch, executable, status, field):
    allow(monkeypatch, ["https://charts.example.org"])
    svc = make_service(tmp_path)
    client = await client_for(svc)
    try:
        r = await client.post("/offersets", json={"executable": executable}, headers=ALICE, allow_redirects=False)
        body = await r.json()
        assert (r.status, body["field"]) == (status, field), body
        assert svc.kube.created == []  # type: ignore[attr-defined]
    finally:
        await client.close()
