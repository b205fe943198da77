"""Several sites, one question: two local clusters, each with its own control plane, operator
and planner (16-core nodes at site-16, 32-core nodes at site-32), sharing one identity issuer.
Federated questions go to both; offers are accepted, and run, where they were made."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from execplanner import localrun

from .conftest import ROOT, wait_until
from .planner_fixture import AUDIENCE, ISSUER

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
SITES = {"site-16": 16, "site-32": 32}  # cluster name -> cores per node
EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"
DEADLINE = 2.0


@contextlib.contextmanager
def on(cluster: str):
    """localrun's calls within go to `cluster` (EXECPLANNER_CLUSTER)."""
    old = os.environ.get("EXECPLANNER_CLUSTER")
    os.environ["EXECPLANNER_CLUSTER"] = cluster
    try:
        yield localrun.cluster()
    finally:
        if old is None:
            os.environ.pop("EXECPLANNER_CLUSTER")
        else:
            os.environ["EXECPLANNER_CLUSTER"] = old


def _cluster_script(name: str, cluster: str, cores: int) -> None:
    env = {**os.environ, "EXECPLANNER_CLUSTER": cluster, "EXECPLANNER_NODES": "2", "EXECPLANNER_NODE_CPU": str(cores),
           "EXECPLANNER_NODE_MEMORY": "64Gi", "EXECPLANNER_GPU_NODES": "0"}
    args = [str(ROOT / "cluster" / name), *(["--purge"] if name == "down.sh" else [])]
    proc = subprocess.run(args, capture_output=True, text=True, env=env)
    if proc.returncode:
        pytest.fail(f"{name} for {cluster} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}", pytrace=False)


@pytest.fixture(scope="module")
def sites(jwks_key, tmp_path_factory: pytest.TempPathFactory):
    """Both sites up: {cluster: (planner url, planner process, admin kubectl)}."""
    ports = {c: localrun.free_port() for c in SITES}
    federation = json.dumps([{"name": c, "url": f"http://127.0.0.1:{ports[c]}"} for c in SITES])
    started, out = [], {}
    try:
        for cluster, cores in SITES.items():
            _cluster_script("down.sh", cluster, cores)  # a fresh one, with this node shape
            _cluster_script("up.sh", cluster, cores)
            directory: Path = tmp_path_factory.mktemp(cluster)
            with on(cluster) as c:
                op = localrun.operator(directory, EXECPLANNER_HOLD_LEAD_SECONDS="5")
                started.append(op.start())
                pl = localrun.planner(directory, **{
                    "EXECPLANNER_PLANNER_PORT": str(ports[cluster]), "EXECPLANNER_PLANNER_JWT_ISSUER": ISSUER,
                    "EXECPLANNER_PLANNER_JWT_AUDIENCE": AUDIENCE, "EXECPLANNER_PLANNER_JWKS_URL": jwks_key[1].url,
                    "EXECPLANNER_SITES": federation,
                    "EXECPLANNER_PLANNER_FEDERATION_DEADLINE_SECONDS": str(DEADLINE),
                    "EXECPLANNER_PLANNER_OFFERSET_WAIT_SECONDS": "15",
                    # tasks run their whole booking here (a full site stays full)
                    "EXECPLANNER_PLANNER_POD_ANNOTATIONS": json.dumps(
                        {"pod-complete.stage.kwok.x-k8s.io/delay": "2h"})})
                started.append(pl.start(timeout=90))
                out[cluster] = (pl.url, pl, [c.kubectl, "--kubeconfig", c.kubeconfig])
        yield out
    finally:
        for proc in started:
            proc.stop()
        for cluster, cores in SITES.items():
            _cluster_script("down.sh", cluster, cores)


def call(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def task(cores: int) -> dict:
    return {"tasktype": "uri://docker-container", "taskinfo": {"image": "busybox:1.36"},
            "resources": {"mincores": cores, "minmemory": "1Gi", "minduration": "10m"}}


def offerset(cores: int, name: str, duration: str = "PT1H") -> dict:
    return {"name": name, "executable": {"type": EB_DOCKER, "image": "busybox:1.36"}, "offers": 1,
            "resources": {"compute": [{"cores": {"requested": {"min": cores}}, "memory": {"requested": {"min": 1}}}]},
            "schedule": {"requested": {"duration": duration}}}


def plans(site, namespace_prefix: str = "xp-") -> list[dict]:
    kubectl = site[2]
    items = json.loads(subprocess.run([*kubectl, "get", "xp", "-A", "-o", "json"], capture_output=True, text=True,
                                      check=True).stdout)["items"]
    return [p for p in items if p["metadata"]["namespace"].startswith(namespace_prefix)]


def test_only_the_site_with_32_core_nodes_offers_a_20_core_task(sites, tokens):
    url = sites["site-16"][0]
    status, body = call("POST", f"{url}/federation/accepts", tokens("ana"), task(20))
    assert status == 200, body
    assert {s["site"]: s["status"] for s in body["sites"]} == {"site-16": "answered", "site-32": "answered"}
    words = {a["site"]: a["responseword"] for a in body["answers"]}
    assert words == {"site-32": "YES", "site-16": "NO"} and body["answers"][0]["site"] == "site-32"
    assert body["responseword"] == "YES"


def test_a_federated_offer_is_accepted_and_runs_at_its_own_site(sites, tokens):
    token = tokens("ben")
    status, body = call("POST", f"{sites['site-16'][0]}/federation/offersets", token, offerset(20, "big"))
    assert status == 200, body
    assert body["offers"] and {o["site"] for o in body["offers"]} == {"site-32"}, body
    offer = body["offers"][0]
    assert offer["href"].startswith(sites["site-32"][0])  # accepted where it was made
    status, session = call("POST", offer["href"], token,
                           {"update": {"type": "uri:enum-value-update", "path": "state", "value": "ACCEPTED"}})
    assert status == 200, session
    wait_until(lambda: any((p.get("status") or {}).get("phase") in ("Booked", "Running", "Completed")
                           for p in plans(sites["site-32"], "xp-ben")), timeout=60, what="ben's plan booked at site-32")
    assert not plans(sites["site-16"], "xp-ben") or all(
        (p.get("status") or {}).get("phase") not in ("Booked", "Running", "Completed")
        for p in plans(sites["site-16"], "xp-ben"))


def test_the_earliest_start_comes_first_once_one_site_is_full(sites, tokens):
    token = tokens("cleo")
    # Fill site-16 (2 x 16 cores) for an hour, through its own planner.
    for i in range(2):
        status, body = call("POST", f"{sites['site-16'][0]}/offersets", token, offerset(16, f"fill-{i}"))
        assert status == 200 and body["offers"], body
        status, session = call("POST", body["offers"][0]["href"], token,
                               {"update": {"type": "uri:enum-value-update", "path": "state", "value": "ACCEPTED"}})
        assert status == 200, session
    wait_until(lambda: sum((p.get("status") or {}).get("phase") in ("Booked", "Running")
                           for p in plans(sites["site-16"], "xp-cleo")) >= 2, timeout=60, what="site-16 full")
    status, body = call("POST", f"{sites['site-32'][0]}/federation/accepts", token, task(8))
    assert status == 200, body
    first, second = body["answers"][:2]
    assert (first["site"], first["responseword"]) == ("site-32", "YES"), body
    assert second["site"] == "site-16" and (second["responseword"] == "NO" or second["start"] > first["start"]), body


def test_a_users_sessions_at_both_sites_appear_together(sites, tokens):
    token = tokens("dara")
    for site in SITES:
        status, body = call("POST", f"{sites[site][0]}/offersets", token, offerset(1, f"at-{site}"))
        assert status == 200, body
    status, body = call("GET", f"{sites['site-16'][0]}/federation/sessions", token)
    assert status == 200, body
    assert {s["site"] for s in body["sessions"]} == set(SITES), body


def test_a_stopped_or_killed_site_is_named_and_the_other_still_answers(sites, tokens):
    url, planner_proc, _ = sites["site-32"]
    os.killpg(planner_proc.proc.pid, signal.SIGSTOP)  # accepts connections, never answers
    try:
        started = time.monotonic()
        status, body = call("POST", f"{sites['site-16'][0]}/federation/accepts", tokens("eli"), task(4))
        took = time.monotonic() - started
    finally:
        os.killpg(planner_proc.proc.pid, signal.SIGKILL)
    assert status == 200 and took < DEADLINE + 1.5, (took, body)
    states = {s["site"]: s["status"] for s in body["sites"]}
    assert states == {"site-16": "answered", "site-32": "timeout"}, body
    assert [a["site"] for a in body["answers"]] == ["site-16"] and body["responseword"] == "YES"
    status, body = call("POST", f"{sites['site-16'][0]}/federation/accepts", tokens("eli"), task(4))
    assert {s["site"]: s["status"] for s in body["sites"]}["site-32"] == "failed", body
