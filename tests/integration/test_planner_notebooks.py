"""Notebooks and workshops through the planner (nothing mocked): /accepts for the notebook
types with the shortfall, a workshop booked as an ExecutionBroker offer set whose running
session lists every session's endpoint and token Secret (never the token), and a UWS job's
notebook parameters. The default local cluster: 4 + 1 nodes of 16 cores."""
from __future__ import annotations

import pytest
import requests

from .conftest import kubectl, wait_until
from .test_planner import answered, ivoa_answers_conform, users  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
EB_NOTEBOOK = "https://www.purl.org/ivoa.net/EB/schema/types/executables/jupyter-notebook-1.0.yaml"
LOCATION = "https://example.org/tutorials/gaia-dr3-intro.ipynb"


def test_accepts_answers_a_workshop_with_the_shortfall(planner):
    ask = {"tasktype": "uri://jupyter-notebook", "taskinfo": {"location": LOCATION, "sessions": 200},
           "resources": {"mincores": 7, "minmemory": "12Gi", "minduration": "2h"}}
    no = requests.post(f"{planner.url}/accepts", json=ask).json()
    assert no["reponseword"] == "NO", no
    reasons = " ".join(r["text"] for r in no["reponseinfo"]["reasons"])
    assert "200 pods of 7 cores" in reasons and "short" in reasons, reasons
    yes = requests.post(f"{planner.url}/accepts", json={**ask, "taskinfo": {"location": LOCATION, "sessions": 2},
                                                         "resources": {"mincores": 1, "minmemory": "1Gi"}}).json()
    assert yes["reponseword"] == "YES" and yes["sessions"] == 2, yes
    assert yes["servicetype"] == "uri://jupyter-notebook" and yes["serviceinfo"]["endpoint"].endswith("/offersets")


def test_a_workshop_through_the_broker_lists_its_endpoints_and_secrets(planner, tokens, users):  # noqa: F811
    user = users("nb")
    url, h = planner.url, tokens.header(user)
    body = {"name": "workshop", "executable": {"type": EB_NOTEBOOK, "location": LOCATION}, "sessions": 3,
            "resources": {"compute": [{"cores": {"requested": {"min": 1}}, "memory": {"requested": {"min": 1}}}]},
            "schedule": {"requested": {"duration": "PT30S"}}, "offers": 1}
    offerset = answered(requests.post(f"{url}/offersets", json=body, headers=h), h)
    assert offerset["result"] == "YES", offerset
    session = offerset["offers"][0]
    assert session["sessions"] == 3 and session["executable"] == body["executable"]
    accept = {"update": {"type": "uri:enum-value-update", "path": "state", "value": "ACCEPTED"}}
    assert requests.post(session["href"], json=accept, headers=h).status_code == 200
    running = wait_until(lambda: (d := requests.get(session["href"], headers=h).json())["state"] == "RUNNING"
                         and len(d.get("endpoints") or []) == 3 and d, 120, what="the workshop's sessions to run")
    namespace = f"t-xp-{user}"
    secrets = [e["secret"] for e in running["endpoints"]]
    assert [e["session"] for e in running["endpoints"]] == [1, 2, 3] and len(set(secrets)) == 3
    assert running["endpoint"] == running["endpoints"][0]["url"] and ".svc:8888/" in running["endpoint"]
    assert all(e["key"] == "token" for e in running["endpoints"])
    for name in secrets:  # the Secrets exist; the planner names them and never sends a token
        assert kubectl("-n", namespace, "get", "secret", name, "-o", "name").stdout.strip() == f"secret/{name}"
    # Another user sees none of it.
    other = tokens.header(users("eve"))
    assert requests.get(session["href"], headers=other).status_code == 404


def test_uws_notebook_jobs_keep_their_parameters(planner, tokens, users):  # noqa: F811
    h = tokens.header(users("nbj"))
    r = requests.post(f"{planner.url}/uws/jobs", headers=h, allow_redirects=False,
                      data={"location": LOCATION, "mode": "batch", "duration": "60"})
    assert r.status_code == 303, r.text
    params = requests.get(f"{r.headers['Location']}/parameters", headers=h).text
    assert LOCATION in params and ">batch<" in params, params
    r = requests.post(f"{planner.url}/uws/jobs", headers=h, data={"location": LOCATION, "mode": "batch",
                                                                  "sessions": "2"})
    assert r.status_code == 400 and r.json()["field"] == "sessions", r.text
