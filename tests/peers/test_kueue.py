"""Kueue, built and run here as bench/peers_kueue.py runs it (cluster/kueue.sh), admits a Job.

On the peers bench's own cluster (bench/peers_kueue.py: CLUSTER_ENV, API server 18443), started
if it does not run and stopped again afterwards if this test started it; never the dev cluster."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from kubernetes import client, config

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import peers_kueue as peers  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True)


@pytest.fixture(scope="module")
def cluster():
    saved = dict(os.environ)
    peers.use_own_cluster(int(os.environ.get("EXECPLANNER_NODES", 4)))
    was_up = run("bash", "-c", '. cluster/env.sh && alive kube-apiserver').returncode == 0
    try:
        for step in (["cluster/up.sh"], ["cluster/kueue.sh", "start"]):
            proc = run(*step)
            if proc.returncode:
                pytest.fail(f"{' '.join(step)} failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}", pytrace=False)
        api = config.new_client_from_config(config_file=peers.cluster_var("kubeconfig"))
        yield api
    finally:
        run("cluster/kueue.sh", "stop")
        if not was_up:
            run("cluster/down.sh")
        os.environ.clear()
        os.environ.update(saved)


def test_kueue_admits_a_job(cluster: client.ApiClient) -> None:
    core, batch, custom = client.CoreV1Api(cluster), client.BatchV1Api(cluster), client.CustomObjectsApi(cluster)
    ns = f"t-kueue-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": ns}})
    try:
        peers.kueue_queues(custom, 4, "8Gi", [ns])
        batch.create_namespaced_job(ns, peers.kueue_job("one", ns, 1))
        deadline, workload, pod = time.monotonic() + 60, None, None
        while time.monotonic() < deadline and not (pod and pod.status.phase in ("Running", "Succeeded")):
            time.sleep(0.5)
            workloads = custom.list_namespaced_custom_object(*peers.KUEUE, ns, "workloads")["items"]
            workload = next((w for w in workloads if peers.workload_job(w) == "one"), None)
            pods = core.list_namespaced_pod(ns, label_selector=f"{peers.WORKLOAD_LABEL}=one").items
            pod = pods[0] if pods else None
        assert workload is not None, "Kueue made no Workload for the Job"
        assert peers.workload_admitted(workload), f"the Workload was not admitted: {workload.get('status')}"
        assert batch.read_namespaced_job("one", ns).spec.suspend is False, "Kueue did not resume the Job"
        assert pod is not None and pod.status.phase in ("Running", "Succeeded"), "the Job's pod never ran"
        admission = workload["status"]["admission"]
        assert admission["clusterQueue"] == peers.QUEUE
        # A second Job beyond the quota (4 cores) waits: Kueue holds it suspended, unadmitted.
        batch.create_namespaced_job(ns, peers.kueue_job("too-big", ns, 8))
        time.sleep(3)
        assert batch.read_namespaced_job("too-big", ns).spec.suspend is True
    finally:
        core.delete_namespace(ns)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                core.read_namespace(ns)
                time.sleep(1)
            except client.ApiException:
                break
        peers.delete_kueue_queues(custom)
