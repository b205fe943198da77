"""bench/peers_kueue.py's pure parts: the queued stream's size, the two systems' workloads being
the same pod, and the refusal to give figures when a workload went missing."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import peers_kueue as peers  # noqa: E402


def test_queued_stream_asks_at_least_twice_the_cluster_in_whole_fractions_of_a_node() -> None:
    assert peers.queued_cores(200, 16, 1000) == 8  # 8,000 cores asked of 3,200
    assert peers.queued_cores(20, 16, 100) == 8
    assert peers.queued_cores(10, 16, 1000) == 1
    for nodes, n in ((200, 1000), (50, 300), (7, 40)):
        c = peers.queued_cores(nodes, 16, n)
        assert 16 % c == 0 and n * c >= 2 * nodes * 16


def test_both_systems_run_the_same_pod() -> None:
    job = peers.kueue_job("w-1", "ns", 8)
    assert job["spec"]["suspend"] is True
    assert job["metadata"]["labels"] == {"kueue.x-k8s.io/queue-name": peers.QUEUE}
    pod = job["spec"]["template"]
    spec = peers.plan("w-1", "ns", 8)["spec"]
    assert spec["executable"]["podLabels"] == pod["metadata"]["labels"]
    assert spec["executable"]["podAnnotations"] == pod["metadata"]["annotations"]
    assert spec["executable"]["image"] == pod["spec"]["containers"][0]["image"]
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "8", "memory": "8Gi"}
    assert spec["resources"] == {"cores": {"min": 8}, "memory": {"min": "8Gi"}}


def test_a_stream_missing_a_workload_anywhere_is_refused() -> None:
    every = {f"w-{i}": 1.0 for i in range(3)}
    assert peers.verdict(3, every, every, every, every) == []
    some = dict(list(every.items())[:2])
    assert peers.verdict(3, every, {}, every, some) == ["3 of 3 workloads never admitted",
                                                         "1 of 3 workloads never seen Succeeded"]


def test_workload_admission_and_owner() -> None:
    wl = {"metadata": {"ownerReferences": [{"kind": "Job", "name": "w-7"}]},
          "status": {"conditions": [{"type": "QuotaReserved", "status": "True"},
                                    {"type": "Admitted", "status": "True"}]}}
    assert peers.workload_job(wl) == "w-7" and peers.workload_admitted(wl)
    wl["status"]["conditions"][1]["status"] = "False"
    assert not peers.workload_admitted(wl)
