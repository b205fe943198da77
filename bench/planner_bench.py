"""`make bench-planner`: the planner against the local cluster with NODES extra kwok nodes and
PLANS booked plans, driven from a separate load process on loopback.

The booked plans are written as the operator writes them (a Booked status with placements on
the bench nodes, spread over the next days), without the operator running, so that setting
up 10,000 bookings takes a minute rather than the operator's booking time; the planner reads
them through its watches exactly as it reads the operator's. Then, for 1, 16 and 128 clients,
one JSON line: clients, answers_per_s, p50_ms, p99_ms, errors, rss_mb (the planner's), and
how many answers were searched for and how many reused (Calendar.offers: the same question
in the same second); first with the `mix` of questions (common sizes, which come again),
then with `distinct` questions (none comes again: every answer is searched for). Last,
with the operator started, POST /offersets until its offers are available (the POST answers
once the operator has written them): offerset_p50_s, offerset_p99_s. Everything it creates
(a namespace, its plans, the nodes) is removed at the end.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import fresh_namespace, iso, make_nodes, pct, teardown
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from execplanner import devidentity, localrun

NODES = int(os.environ.get("BENCH_NODES", 1000))
PLANS = int(os.environ.get("BENCH_PLANS", 10_000))
SECONDS = float(os.environ.get("BENCH_SECONDS", 10))
OFFERSETS = int(os.environ.get("BENCH_OFFERSETS", 40))
CONCURRENCY = [int(c) for c in os.environ.get("BENCH_CLIENTS", "1,16,128").split(",")]
QUESTIONS = os.environ.get("BENCH_QUESTIONS", "mix,distinct").split(",")
NS = "execplanner-bench-planner"
LABEL = "execplanner.io/bench-planner"
GROUP, VERSION, PLURAL = "execplanner.io", "v1alpha1", "executionplans"
HERE = Path(__file__).resolve().parent
EB_DOCKER = "https://www.purl.org/ivoa.net/EB/schema/types/executables/docker-container-1.0.yaml"


def booked_plan(i: int, nodes: list[str], now: float) -> tuple[dict, dict]:
    """Plan i: 1-4 cores for 1-6 hours somewhere in the next 3 days, on node i % len(nodes).
    At most 10 plans share a node, 4 cores each at most: they never over-commit it."""
    node = nodes[i % len(nodes)]
    cores, hours = 1 + i % 4, 1 + (i // 7) % 6
    start = now + 600 + (i * 7919) % (3 * 86400)
    spec = {"executable": {"type": "docker-container", "image": "registry.k8s.io/pause:3.10"},
            "resources": {"cores": {"min": str(cores)}, "memory": {"min": f"{cores * 2}Gi"}},
            "schedule": {"duration": {"min": f"{hours}h"}}, "nodeSelector": {LABEL: "true"}}
    booking = {"offer": "1", "start": iso(start), "end": iso(start + hours * 3600), "cores": str(cores),
               "memory": f"{cores * 2}Gi", "gpus": 0,
               "placements": [{"node": node, "cores": str(cores), "memory": f"{cores * 2}Gi", "gpus": 0}]}
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ExecutionPlan",
            "metadata": {"name": f"booked-{i}", "namespace": NS}, "spec": spec}
    return body, {"status": {"phase": "Booked", "message": "bench", "booking": booking}}


def offerset(i: int) -> dict:
    return {"name": f"bench-{i}", "executable": {"type": EB_DOCKER, "image": "registry.k8s.io/pause:3.10"},
            "resources": {"compute": [{"cores": {"requested": {"min": 1, "max": 4}},
                                       "memory": {"requested": {"min": 1, "max": 4}}}]},
            "schedule": {"requested": {"duration": "PT1H"}}, "offers": 2}


def get(url: str, headers: dict | None = None) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
        return json.loads(r.read())


def searches(url: str) -> dict[str, float]:
    """The planner's execplanner_planner_offer_searches_total, by result (searched, reused)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as r:
        text = r.read().decode()
    return {s.labels["result"]: s.value for family in text_string_to_metric_families(text)
            if family.name == "execplanner_planner_offer_searches" for s in family.samples}


def main() -> int:
    kubeconfig = localrun.cluster().kubeconfig
    api = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    workdir = Path(tempfile.mkdtemp(prefix="execplanner-bench-planner-"))
    localrun.install()
    fresh_namespace(core, NS)
    t = time.monotonic()
    nodes = make_nodes(core, NODES, LABEL, prefix="kwok-bp")
    print(f"# {NODES} nodes Ready in {time.monotonic() - t:.0f}s", file=sys.stderr)

    now = time.time()
    t = time.monotonic()

    def book(i: int) -> None:
        body, status = booked_plan(i, nodes, now)
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, body["metadata"]["name"], status)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(book, range(PLANS)))
    print(f"# {PLANS} booked plans written in {time.monotonic() - t:.0f}s", file=sys.stderr)

    jwks = localrun.JwksServer(devidentity.jwks(devidentity.private_key(workdir / "issuer")))
    token = devidentity.mint(devidentity.private_key(workdir / "issuer"), "bench")
    pl = localrun.planner(workdir, **devidentity.planner_env(jwks.port),
                          EXECPLANNER_PLANNER_NAMESPACE_MAP=json.dumps({"bench": NS}),
                          EXECPLANNER_PLANNER_RATE_LIMIT_PER_MINUTE="0")  # the load is one user, on purpose
    op = localrun.operator(workdir)
    status = 1
    try:
        t = time.monotonic()
        pl.start(timeout=300)
        ready = get(f"{pl.url}/readyz")
        print(f"# planner ready in {time.monotonic() - t:.1f}s: {ready}", file=sys.stderr)
        for questions in QUESTIONS:
            for clients in CONCURRENCY:
                before = searches(pl.url)
                out = subprocess.run([sys.executable, str(HERE / "planner_load.py"), pl.url, token, str(clients),
                                      str(SECONDS), questions], capture_output=True, text=True, check=True)
                after = searches(pl.url)
                line = json.loads(out.stdout)
                line["rss_mb"] = round(pl.rss_mb(), 1)
                line.update({k: int(after.get(k, 0) - before.get(k, 0)) for k in ("searched", "reused")})
                line.update(nodes=ready["nodes"], plans=PLANS)
                print(json.dumps(line), flush=True)

        t = time.monotonic()
        op.start(timeout=600)
        print(f"# operator started (with {PLANS} plans) in {time.monotonic() - t:.0f}s", file=sys.stderr)
        latencies, offered = [], 0
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        # Warm-up, not measured: the operator takes up its 10,000 plans first (a daemon each).
        t = time.monotonic()
        while time.monotonic() - t < 300:
            with urllib.request.urlopen(urllib.request.Request(
                    f"{pl.url}/offersets", data=json.dumps(offerset(-1)).encode(), headers=headers,
                    method="POST"), timeout=60) as r:
                if json.loads(r.read())["offers"]:
                    break
        print(f"# the operator answered a first offer set {time.monotonic() - t:.0f}s after its start",
              file=sys.stderr)
        for i in range(OFFERSETS):
            started = time.perf_counter()
            req = urllib.request.Request(f"{pl.url}/offersets", data=json.dumps(offerset(i)).encode(), headers=headers,
                                         method="POST")
            with urllib.request.urlopen(req, timeout=60) as r:  # follows the 303 to the offer set
                doc = json.loads(r.read())
            latencies.append(time.perf_counter() - started)
            offered += bool(doc["offers"])
        print(json.dumps({"offersets": OFFERSETS, "with_offers": offered,
                          "offerset_p50_s": pct(latencies, 0.5), "offerset_p99_s": pct(latencies, 0.99)}), flush=True)
        status = 0 if offered == OFFERSETS else 1
    finally:
        pl.stop()
        teardown(core, custom, NS, LABEL, op)
        jwks.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
