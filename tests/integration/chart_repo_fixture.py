"""A real chart repository on loopback for the tests: the charts of tests/integration/charts
packaged with helm, an index.yaml, served over HTTP on 127.0.0.1 (conftest.py registers the fixture)."""
from __future__ import annotations

import os
import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from . import cluster_env

CHARTS = Path(__file__).parent / "charts"
SERVED = ("gaia", "spread", "broken", "elsewhere", "batch")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def chart_repo(tmp_path_factory: pytest.TempPathFactory, kubeconfig: str):
    """A real chart repository on 127.0.0.1 (a random port): the test charts packaged, an
    index.yaml, served over HTTP. Yields its URL."""
    root = tmp_path_factory.mktemp("chart-repo")
    repo = root / "repo"
    repo.mkdir()
    helm = cluster_env.binary("helm")
    env = {**os.environ, "HELM_CACHE_HOME": str(root / "cache"), "HELM_CONFIG_HOME": str(root / "config"),
           "HELM_DATA_HOME": str(root / "data")}
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(repo)))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    for name in SERVED:
        subprocess.run([helm, "package", str(CHARTS / name), "-d", str(repo)], env=env, check=True,
                       capture_output=True, text=True)
    subprocess.run([helm, "repo", "index", str(repo), "--url", url], env=env, check=True, capture_output=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield url
    server.shutdown()
    server.server_close()
    shutil.rmtree(root, ignore_errors=True)
