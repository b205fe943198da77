"""Notebooks and workshops through the planner's IVOA APIs, at the HTTP level over the fake
service (two nodes of 16 cores and 64Gi): /accepts for the notebook task types (with location,
mode and sessions), offer sets of the draft's jupyter-notebook executable, the sessions' and UWS
jobs' endpoints (the token's Secret, never the token), and a batch notebook's executed notebook
served to its owner only. Every /accepts, /offersets and /sessions answer is also held to the
documents' schemas (fake_service.CheckedClient)."""
from __future__ import annotations

import json
import time
from xml.etree import ElementTree as ET

import pytest
from yarl import URL

from execplanner.api.ivoa import EB_NOTEBOOK

from .fake_service import bearer, client_for, make_offers, make_service

ALICE, BOB = bearer("token-alice"), bearer("token-bob")
LOCATION = "https://example.org/tutorials/gaia-dr3-intro.ipynb"
NOTEBOOK = json.dumps({"cells": [{"cell_type": "code", "source": "1+1", "outputs": []}], "metadata": {},
                       "nbformat": 4, "nbformat_minor": 5}, indent=1)
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
XLINK = "{http://www.w3.org/1999/xlink}"


def workshop(sessions: int, **info) -> dict:
    return {"tasktype": "uri://jupyter-notebook", "taskinfo": {"location": LOCATION, "sessions": sessions, **info},
            "resources": {"mincores": 7, "minmemory": "12Gi", "minduration": "2h"}}


@pytest.fixture
async def client(tmp_path):
    svc = make_service(tmp_path)
    c = await client_for(svc)
    c.svc = svc  # type: ignore[attr-defined]
    yield c
    await c.close()


async def test_accepts_answers_for_a_workshop_with_its_service_and_shortfall(client):
    # Two nodes of 16 cores hold 2 sessions of 7 cores each: 4 fit, all for the whole 2 h.
    r = await client.post("/accepts", json=workshop(4))
    answer = await r.json()
    assert r.status == 200 and answer["reponseword"] == "YES", answer
    assert answer["servicetype"] == "uri://jupyter-notebook"
    assert answer["serviceinfo"]["endpoint"].endswith("/offersets")
    assert answer["sessions"] == 4
    # Each session's size: the minimum, never sized up (the sessions are identical).
    assert (answer["resources"]["mincores"], answer["resources"]["maxcores"]) == (7, 7)
    assert (answer["resources"]["minmemory"], answer["resources"]["maxmemory"]) == ("12Gi", "12Gi")
    assert len(answer["nodes"]) == 2
    # A fifth does not fit: NO, saying how many are short.
    r = await client.post("/accepts", json=workshop(5))
    answer = await r.json()
    assert answer["reponseword"] == "NO", answer
    text = " ".join(reason["text"] for reason in answer["reponseinfo"]["reasons"])
    assert "1 short" in text, text


@pytest.mark.parametrize("tasktype", ["uri://jupyter-notebook", "jupyter-notebook", EB_NOTEBOOK])
async def test_every_name_of_the_notebook_type_is_known(client, tasktype):
    r = await client.get("/accepts", params={"tasktype": tasktype})
    answer = await r.json()
    assert answer["reponseword"] == "YES" and answer["servicetype"] == "uri://jupyter-notebook", answer
    r = await client.post("/accepts", json={"tasktype": tasktype, "taskinfo": {"location": LOCATION},
                                            "resources": {"mincores": 2, "minmemory": "4Gi"}})
    answer = await r.json()
    assert answer["reponseword"] == "YES" and answer["sessions"] == 1, answer
    assert answer["resources"]["maxcores"] == 2.5 or answer["resources"]["maxcores"] >= 2  # one session: sized up


async def test_a_batch_notebook_is_served_by_uws(client):
    r = await client.post("/accepts", json={"tasktype": "uri://jupyter-notebook",
                                            "taskinfo": {"location": LOCATION, "mode": "batch"}})
    answer = await r.json()
    assert answer["reponseword"] == "YES" and answer["serviceinfo"]["endpoint"].endswith("/uws/jobs"), answer


@pytest.mark.parametrize("taskinfo, field", [
    ({}, "taskinfo.location"),
    ({"location": "ftp://example.org/a.ipynb"}, "taskinfo.location"),
    ({"location": LOCATION, "mode": "later"}, "taskinfo.mode"),
    ({"location": LOCATION, "sessions": 0}, "taskinfo.sessions"),
    ({"location": LOCATION, "sessions": 1001}, "taskinfo.sessions"),
    ({"location": LOCATION, "mode": "batch", "sessions": 2}, "taskinfo.sessions"),
])
async def test_accepts_refuses_bad_notebook_fields_naming_them(client, taskinfo, field):
    r = await client.post("/accepts", json={"tasktype": "uri://jupyter-notebook", "taskinfo": taskinfo})
    assert r.status == 400, await r.text()
    assert (await r.json())["field"] == field


async def test_an_offer_set_for_a_workshop_books_its_sessions_and_shows_their_endpoints(client):
    body = {"name": "tuesday", "executable": {"type": EB_NOTEBOOK, "location": LOCATION}, "sessions": 4,
            "resources": {"compute": [{"cores": {"requested": {"min": 7}}, "memory": {"requested": {"min": 12}}}]},
            "schedule": {"requested": {"duration": "PT2H"}}, "offers": 1}
    r = await client.post("/offersets", json=body, headers=ALICE, allow_redirects=False)
    assert r.status == 303, await r.text()
    plan = client.svc.kube.created[-1]
    spec = plan["spec"]
    assert spec["executable"] == {"type": EB_NOTEBOOK, "location": LOCATION} and spec["sessions"] == 4
    make_offers(client.svc, int(time.time()))
    assert plan["status"]["phase"] == "Offered", plan["status"]
    offerset = await (await client.get(URL(r.headers["Location"]).path, headers=ALICE)).json()
    session = offerset["offers"][0]
    assert offerset["result"] == "YES" and session["sessions"] == 4
    assert session["executable"] == body["executable"]
    assert "endpoints" not in session  # offered, not yet running
    # Booked and running (as the operator writes it): each session's URL and token Secret.
    ns, name = plan["metadata"]["namespace"], plan["metadata"]["name"]
    endpoints = [{"session": i, "url": f"http://{name}-session-{i}.{ns}.svc:8888/",
                  "secret": f"{name}-session-{i}-token", "key": "token"} for i in range(1, 5)]
    plan["status"].update(phase="Running", booking={"offer": "1"}, endpoints=endpoints, endpoint=endpoints[0]["url"])
    session = await (await client.get(f"/sessions/{session['uuid']}", headers=ALICE)).json()
    assert session["state"] == "RUNNING" and session["endpoints"] == endpoints
    assert session["endpoint"] == endpoints[0]["url"]
    assert "token" not in json.dumps(session).replace('"key": "token"', "").replace("-token", "")
    assert (await client.get(f"/sessions/{session['uuid']}", headers=BOB)).status == 404


@pytest.mark.parametrize("body, field", [
    ({"executable": {"type": EB_NOTEBOOK}}, "executable.location"),
    ({"executable": {"type": EB_NOTEBOOK, "location": "file:///etc/passwd"}}, "executable.location"),
    ({"executable": {"type": EB_NOTEBOOK, "location": LOCATION, "mode": "batch"}, "sessions": 3}, "sessions"),
    ({"executable": {"type": "docker-container", "image": "busybox"}, "sessions": 3}, "sessions"),
])
async def test_offer_sets_refuse_bad_notebook_fields(client, body, field):
    r = await client.post("/offersets", json=body, headers=ALICE, allow_redirects=False)
    assert r.status == 400, await r.text()
    assert (await r.json())["field"] == field


async def test_a_uws_batch_notebook_serves_its_executed_notebook_to_its_owner_only(client):
    r = await client.post("/uws/jobs", data={"location": LOCATION, "mode": "batch", "duration": "600"},
                          headers=ALICE, allow_redirects=False)
    assert r.status == 303, await r.text()
    plan = client.svc.kube.created[-1]
    assert plan["spec"]["executable"] == {"type": "jupyter-notebook", "location": LOCATION, "mode": "batch"}
    job = URL(r.headers["Location"]).path
    absolute = r.headers["Location"]
    params = ET.fromstring(await (await client.get(f"{job}/parameters", headers=ALICE)).text())
    assert {p.get("id"): p.text for p in params} == {"location": LOCATION, "mode": "batch", "duration": "600"}
    # Completed, its notebook kept (status.result) and its pod's log still there.
    ns, name = plan["metadata"]["namespace"], plan["metadata"]["name"]
    plan["status"] = {"phase": "Completed", "taskRun": name, "booking": {"offer": "1", "start": "x", "end": "y",
                                                                          "cores": "1", "memory": "1Gi"},
                      "result": {"configMap": f"{name}-result", "key": "gaia-dr3-intro.ipynb", "size": 100}}
    client.svc.cache.runs[(ns, name)] = {"status": {"phase": "COMPLETED", "log": {"pod": f"{name}-task",
                                                                                  "container": "task"}}}
    client.svc.kube.logs[(ns, f"{name}-task")] = "[NbConvertApp] Converting notebook\n" + NOTEBOOK
    doc = ET.fromstring(await (await client.get(job, headers=ALICE)).text())
    results = {e.get("id"): e.get(f"{XLINK}href") for e in doc.find(f"{UWS}results")}
    assert set(results) == {"log", "notebook"} and results["notebook"] == f"{absolute}/results/notebook"
    r = await client.get(f"{job}/results/notebook", headers=ALICE)
    assert r.status == 200 and r.content_type == "application/x-ipynb+json"
    assert json.loads(await r.text())["cells"][0]["source"] == "1+1"
    assert (await client.get(f"{job}/results/notebook", headers=BOB)).status == 404
    # Its pod gone: where it is kept instead.
    del client.svc.kube.logs[(ns, f"{name}-task")]
    r = await client.get(f"{job}/results/notebook", headers=ALICE)
    assert r.status == 404 and f"{name}-result" in (await r.json())["error"]


async def test_a_uws_workshop_job_lists_its_endpoints_and_secrets(client):
    r = await client.post("/uws/jobs", data={"location": LOCATION, "sessions": "3", "cores": "2"},
                          headers=ALICE, allow_redirects=False)
    assert r.status == 303, await r.text()
    plan = client.svc.kube.created[-1]
    assert plan["spec"]["sessions"] == 3 and plan["spec"]["executable"]["type"] == "jupyter-notebook"
    name = plan["metadata"]["name"]
    endpoints = [{"session": i, "url": f"http://{name}-session-{i}.x.svc:8888/", "secret": f"{name}-session-{i}-token",
                  "key": "token"} for i in range(1, 4)]
    plan["status"] = {"phase": "Running", "booking": {"start": "a", "end": "b", "cores": "6", "memory": "3Gi"},
                      "endpoints": endpoints, "endpoint": endpoints[0]["url"]}
    doc = ET.fromstring(await (await client.get(URL(r.headers["Location"]).path, headers=ALICE)).text())
    info = doc.find(f"{UWS}jobInfo")
    assert info.find("sessions").text == "3"
    found = [(e.get("session"), e.text, e.get("secret"), e.get("key")) for e in info.findall("endpoint") if e.get("session")]
    assert found == [(str(e["session"]), e["url"], e["secret"], "token") for e in endpoints]


@pytest.mark.parametrize("data, field", [
    ({"mode": "batch"}, "location"),
    ({"location": LOCATION, "mode": "batch", "sessions": "2"}, "sessions"),
    ({"location": LOCATION, "cmd": "echo"}, "cmd"),
    ({"location": "nope"}, "location"),
])
async def test_uws_refuses_bad_notebook_parameters(client, data, field):
    r = await client.post("/uws/jobs", data=data, headers=ALICE, allow_redirects=False)
    assert r.status == 400, await r.text()
    assert (await r.json())["field"] == field


async def test_a_session_serves_its_batch_result(client):
    body = {"executable": {"type": EB_NOTEBOOK, "location": LOCATION, "mode": "batch"}, "offers": 1}
    r = await client.post("/offersets", json=body, headers=ALICE, allow_redirects=False)
    assert r.status == 303, await r.text()
    make_offers(client.svc, int(time.time()))
    plan = client.svc.kube.created[-1]
    ns, name = plan["metadata"]["namespace"], plan["metadata"]["name"]
    offerset = await (await client.get(URL(r.headers["Location"]).path, headers=ALICE)).json()
    sid = offerset["offers"][0]["uuid"]
    plan["status"].update(phase="Completed", taskRun=name, booking={"offer": "1"},
                          result={"configMap": f"{name}-result", "key": "gaia-dr3-intro.ipynb", "size": 10})
    client.svc.cache.runs[(ns, name)] = {"status": {"log": {"pod": f"{name}-task"}}}
    client.svc.kube.logs[(ns, f"{name}-task")] = NOTEBOOK
    session = await (await client.get(f"/sessions/{sid}", headers=ALICE)).json()
    assert session["state"] == "COMPLETED" and session["result"].endswith(f"/sessions/{sid}/result")
    r = await client.get(f"/sessions/{sid}/result", headers=ALICE)
    assert r.status == 200 and await r.text() == NOTEBOOK
    assert (await client.get(f"/sessions/{sid}/result", headers=BOB)).status == 404
