"""`make bench-operator`: PLANS ExecutionPlans against NODES extra kwok nodes, through the real
operator (its own credentials), kube-scheduler, the Job controller and kwok.

Half the plans start as soon as possible, half in a window that opens START_AHEAD seconds
later (so placeholders are made and preempted). Prints one JSON line:
plans, nodes, booked_per_s, create_to_booked_p50_s, create_to_booked_p99_s,
start_to_running_p99_s (booking start to the task pod Running), operator_rss_mb.
Everything it creates (a namespace, the nodes) is removed at the end.
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

from kubernetes import client, config, watch

from benchlib import fresh_namespace, iso, make_nodes, pct, teardown
from execplanner import localrun
from execplanner.planner.engine import parse_instant

PLANS = int(os.environ.get("BENCH_PLANS", 1000))
NODES = int(os.environ.get("BENCH_NODES", 200))
START_AHEAD = 30
NS = "execplanner-bench"
LABEL = "execplanner.io/bench"


def plan(i: int, now: float) -> dict:
    schedule = {"duration": {"min": "60s"}}
    if i % 2:
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
        running: dict[str, float] = {}
        stop = threading.Event()

        def follow(list_fn, *args, on_event, **kwargs) -> None:
            """A watch that restarts (from a fresh list) whenever the stream ends or fails."""
            while not stop.is_set():
                try:
                    for ev in watch.Watch().stream(list_fn, *args, timeout_seconds=60, **kwargs):
                        on_event(ev["object"])
                        if stop.is_set():
                            return
                except Exception as e:  # noqa: BLE001  (a benchmark must not lose its watch)
                    print(f"# watch restarted after {type(e).__name__}: {e}", file=sys.stderr)

        def plan_seen(obj: dict) -> None:
            status = obj.get("status") or {}
            name = obj["metadata"]["name"]
            if status.get("booking") and name not in booked:
                booked[name] = time.time()
                starts[name] = parse_instant(status["booking"]["start"], "start")

        def pod_seen(pod) -> None:
            name = (pod.metadata.labels or {}).get("execplanner.io/plan")
            if pod.status.phase == "Running" and name not in running:
                running[name] = time.time()

        def watch_plans() -> None:
            follow(custom.list_namespaced_custom_object, "execplanner.io", "v1alpha1", NS, "executionplans",
                   on_event=plan_seen)

        def watch_pods() -> None:
            follow(core.list_namespaced_pod, NS, label_selector="execplanner.io/role=task", on_event=pod_seen)

        threads = [threading.Thread(target=f, daemon=True) for f in (watch_plans, watch_pods)]
        for t in threads:
            t.start()
        time.sleep(1)
        t0 = time.time()

        def create(i: int) -> None:
            body = plan(i, t0)
            created[body["metadata"]["name"]] = time.time()
            custom.create_namespaced_custom_object("execplanner.io", "v1alpha1", NS, "executionplans", body)

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(PLANS)))
        deadline = time.monotonic() + 300
        while len(booked) < PLANS and time.monotonic() < deadline:
            time.sleep(0.2)
        last_booked = max(booked.values(), default=t0)
        while len(running) < PLANS and time.monotonic() < deadline + START_AHEAD + 60:
            time.sleep(0.5)
        rss = op.rss_mb()
        stop.set()

        lat = [booked[n] - created[n] for n in booked]
        run = [running[n] - starts[n] for n in running if n in starts]
        print(json.dumps({
            "plans": PLANS, "nodes": NODES, "booked": len(booked), "running": len(running),
            "booked_per_s": round(len(booked) / max(1e-9, last_booked - t0), 1),
            "create_to_booked_p50_s": round(statistics.median(lat), 3) if lat else None,
            "create_to_booked_p99_s": pct(lat, 0.99),
            "start_to_running_p99_s": pct(run, 0.99),
            "operator_rss_mb": round(rss, 1),
        }), flush=True)
    finally:
        teardown(core, custom, NS, LABEL, op, wait_s=120)
    return 0 if len(booked) == PLANS and len(running) == PLANS else 1


if __name__ == "__main__":
    sys.exit(main())
