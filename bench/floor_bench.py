"""`make bench-floor`: what this machine's control plane alone takes to start a burst of Jobs,
with no operator: the floor under bench-operator's start_to_running figure.

JOBS Jobs shaped like the operator's (1 core, 1Gi, pinned to one of NODES kwok nodes, at the
task PriorityClass, a 10 s life on kwok) are created at once from 16 threads; prints one JSON
line: jobs, nodes, create_s (to create them all), create_to_running_p50_s / _p99_s (the
client's create call to the pod seen Running), and the same steps as bench-operator
(job_to_pod, pod_to_bound, bound_to_running, p99).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config

from benchlib import PodTimes, follow, fresh_namespace, make_nodes, pct, step_p99, teardown
from execplanner import localrun
from execplanner.operator.settings import Settings

JOBS = int(os.environ.get("BENCH_JOBS", 500))
NODES = int(os.environ.get("BENCH_NODES", 200))
NS = "execplanner-floor"
LABEL = "execplanner.io/bench"


def job(i: int, node: str) -> dict:
    resources = {"cpu": "1", "memory": "1Gi"}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"floor-{i}", "namespace": NS},
            "spec": {"backoffLimit": 0, "activeDeadlineSeconds": 600, "template": {
                "metadata": {"labels": {"floor": f"floor-{i}"},
                             "annotations": {"pod-complete.stage.kwok.x-k8s.io/delay": "10s"}},
                "spec": {"containers": [{"name": "task", "image": "registry.k8s.io/pause:3.10",
                                         "resources": {"requests": resources, "limits": resources}}],
                         "restartPolicy": "Never", "priorityClassName": Settings().task_priority_class,
                         "nodeSelector": {LABEL: "true", "kubernetes.io/hostname": node}}}}}


def main() -> int:
    localrun.install()  # the PriorityClasses
    api = config.new_client_from_config(config_file=localrun.cluster().kubeconfig)
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    fresh_namespace(core, NS)
    nodes = make_nodes(core, NODES, LABEL)
    created: dict[str, float] = {}
    jobs: dict[str, float] = {}
    pods = PodTimes()
    running = pods.running
    stop = threading.Event()

    def pod_seen(pod: dict) -> None:
        pods.seen((pod["metadata"].get("labels") or {}).get("floor"), pod)

    def job_seen(job: dict) -> None:
        jobs.setdefault(job["metadata"]["name"], time.time())

    follow(stop, core.list_namespaced_pod, NS, on_event=pod_seen)
    follow(stop, batch.list_namespaced_job, NS, on_event=job_seen)
    time.sleep(1)
    try:
        t0 = time.time()

        def create(i: int) -> None:
            created[f"floor-{i}"] = time.time()
            batch.create_namespaced_job(NS, job(i, nodes[i % len(nodes)]))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(JOBS)))
        create_s = time.time() - t0
        deadline = time.monotonic() + 300
        while len(running) < JOBS and time.monotonic() < deadline:
            time.sleep(0.5)
        stop.set()

        total = [running[n] - created[n] for n in running if n in created]
        print(json.dumps({
            "jobs": JOBS, "nodes": NODES, "running": len(running), "create_s": round(create_s, 2),
            "create_to_running_p50_s": round(statistics.median(total), 3) if total else None,
            "create_to_running_p99_s": pct(total, 0.99),
            "job_to_pod_p99_s": step_p99(jobs, pods.created),
            "pod_to_bound_p99_s": step_p99(pods.created, pods.bound),
            "bound_to_running_p99_s": step_p99(pods.bound, running),
        }), flush=True)
    finally:
        teardown(core, custom, NS, LABEL, wait_s=60)
    return 0 if len(running) == JOBS else 1


if __name__ == "__main__":
    sys.exit(main())
