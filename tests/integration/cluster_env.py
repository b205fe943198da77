"""Where the local cluster's files and binaries are: the same rules as cluster/env.sh."""
from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@cache
def _env() -> dict[str, str]:
    # Ask env.sh itself, so the two can never disagree.
    script = f'. "{ROOT}/cluster/env.sh"; echo "$kubeconfig"; echo "$k8s_bin"; echo "$helm_bin"; echo "$NODES $NODE_CPU $NODE_MEMORY $NODE_PODS $GPU_NODES $GPU_PER_NODE"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    nodes, cpu, memory, pods, gpu_nodes, gpus = out[3].split()
    return {"kubeconfig": out[0], "k8s_bin": out[1], "helm_bin": out[2], "nodes": nodes, "node_cpu": cpu,
            "node_memory": memory, "node_pods": pods, "gpu_nodes": gpu_nodes, "gpu_per_node": gpus}


def kubeconfig_path() -> str:
    return _env()["kubeconfig"]


def binary(name: str) -> str:
    folder = _env()["helm_bin"] if name == "helm" else _env()["k8s_bin"]
    return os.path.join(folder, name)


def node_shape() -> dict[str, str]:
    """The configured fake nodes: count and size (strings as given to the cluster)."""
    return {k: v for k, v in _env().items() if k.startswith(("node", "gpu"))}
