"""`make bench-operator`: PLANS ExecutionPlans against NODES extra kwok nodes, through the real
operator (its own credentials), kube-scheduler, the Job controller and kwok.

Half the plans start as soon as possible, half in a window that opens START_AHEAD seconds
later (their task pods are made the hold lead before it and wait). Prints one JSON line:
plans, nodes, booked_per_s, create_to_booked_p50_s, create_to_booked_p99_s,
start_to_running_p99_s (booking start to the task pod Running), operator_rss_mb, and the
steps of a task pod (p99, as this process's watches saw it): made to bound (kube-scheduler),
bound to Running (kwok, at the start for a window plan). BENCH_DETAIL=FILE also writes
every plan's times (JSON lines, seconds from the first create). `make bench-start` is the
benchmark of record (against bare Jobs, with API writes); this one is its older, mixed form.
Everything it creates (a namespace, the nodes) is removed at the end.

BENCH_STARTS=later (a diagnostic, not the benchmark): every plan's window opens an hour
ahead, so nothing starts during the run and the figures are the booking path alone.
BENCH_CLIENTS (default 16): how many threads create the plans.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config

from benchlib import PodTimes, follow, fresh_namespace, iso, make_nodes, pct, step_p99, teardown
from execplanner import localrun
from execplanner.engine import parse_instant

PLANS = int(os.environ.get("BENCH_PLANS", 1000))
NODES = int(os.environ.get("BENCH_NODES", 200))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", 16))  # threads creating the plans
START_AHEAD = 30
STARTS = os.environ.get("BENCH_STARTS", "mixed")  # or "later": booking alone
if STARTS not in ("mixed", "later"):
    sys.exit(f"BENCH_STARTS={STARTS!r}: expected mixed or later")
NS = "execplanner-bench"
LABEL = "execplanner.io/bench"


def plan(i: int, now: float) -> dict:
    schedule = {"duration": {"min": "60s"}}
    if STARTS == "later":
        schedule["start"] = [f"{iso(now + 3600)}/PT10M"]
    elif i % 2:
        schedule["start"] = [f"{iso(now + START_AHEAD)}/PT10M"]
    return {"apiVersion": "execplanner.io/v1alpha1", "kind": "ExecutionPlan",
            "metadata": {"name": f"bench-{i}", "namespace": NS},
            "spec": {"executable": {"type": "docker-container", "image": "registry.k8s.io/pause:3.10",
                                    "podAnnotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "10s"}},
                     "resources": {"cores": {"min": 1}, "memory": {"min": "1Gi"}},
                     "schedule": schedule, "nodeSelector": {LABEL: "true"}}}


def main() -> int:
    kubeconfig = localrun.cluster().kubeconfig
    api = config.new_client_from_config(config_file=kubeconfig)
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    workdir = Path(tempfile.mkdtemp(prefix="execplanner-bench-"))
    op = localrun.operator(workdir, EXECPLANNER_HOLD_LEAD_SECONDS=10)
    fresh_namespace(core, NS)
    make_nodes(core, NODES, LABEL)
    op.start()
    try:
        created: dict[str, float] = {}
        booked: dict[str, float] = {}
        starts: dict[str, int] = {}
        pods = PodTimes()  # the task pods, by plan name
        running = pods.running
        stop = threading.Event()

        def plan_seen(obj: dict) -> None:
            status = obj.get("status") or {}
            name = obj["metadata"]["name"]
            if status.get("booking") and name not in booked:
                booked[name] = time.time()
                starts[name] = parse_instant(status["booking"]["start"], "start")

        def pod_seen(pod: dict) -> None:
            pods.seen((pod["metadata"].get("labels") or {}).get("execplanner.io/plan"), pod)

        follow(stop, custom.list_namespaced_custom_object, "execplanner.io", "v1alpha1", NS, "executionplans",
               on_event=plan_seen)
        follow(stop, core.list_namespaced_pod, NS, label_selector="execplanner.io/role=task", on_event=pod_seen)
        time.sleep(1)
        t0 = time.time()

        def create(i: int) -> None:
            body = plan(i, t0)
            created[body["metadata"]["name"]] = time.time()
            custom.create_namespaced_custom_object("execplanner.io", "v1alpha1", NS, "executionplans", body)

        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(create, range(PLANS)))
        deadline = time.monotonic() + 300
        while len(booked) < PLANS and time.monotonic() < deadline:
            time.sleep(0.2)
        last_booked = max(booked.values(), default=t0)
        while STARTS == "mixed" and len(running) < PLANS and time.monotonic() < deadline + START_AHEAD + 60:
            time.sleep(0.5)
        rss = op.rss_mb()
        stop.set()

        lat = [booked[n] - created[n] for n in booked]
        run = [running[n] - starts[n] for n in running if n in starts]
        if detail := os.environ.get("BENCH_DETAIL"):  # per plan, seconds from t0, for a closer look
            with open(detail, "w") as out:
                for n in created:
                    json.dump({"plan": n, **{k: round(d[n] - t0, 3) for k, d in (
                        ("created", created), ("booked", booked), ("start", starts),
                        ("pod", pods.created), ("bound", pods.bound), ("running", running)) if n in d}}, out)
                    out.write("\n")
        print(json.dumps({
            "plans": PLANS, "nodes": NODES, "starts": STARTS, "booked": len(booked), "running": len(running),
            "booked_per_s": round(len(booked) / max(1e-9, last_booked - t0), 1),
            "create_to_booked_p50_s": round(statistics.median(lat), 3) if lat else None,
            "create_to_booked_p99_s": pct(lat, 0.99),
            "start_to_running_p99_s": pct(run, 0.99),
            "operator_rss_mb": round(rss, 1),
            "pod_to_bound_p99_s": step_p99(pods.created, pods.bound),
            "bound_to_running_p99_s": step_p99(pods.bound, running),
        }), flush=True)
    finally:
        teardown(core, custom, NS, LABEL, op, wait_s=120)
    return 0 if len(booked) == PLANS and (len(running) == PLANS or STARTS == "later") else 1


if __name__ == "__main__":
    sys.exit(main())
