"""Where the local cluster's files and binaries are (execplanner.localrun asks cluster/env.sh)."""
from __future__ import annotations

from execplanner import localrun


def kubeconfig_path() -> str:
    return localrun.cluster().kubeconfig


def binary(name: str) -> str:
    c = localrun.cluster()
    return {"kubectl": c.kubectl, "helm": c.helm}[name]


def node_shape() -> dict[str, str]:
    """The configured fake nodes: count and size (strings as given to the cluster)."""
    return dict(localrun.cluster().nodes)
