"""The planner's aiohttp application over fakes of what lies below it (the watch cache, the
API server), for HTTP-level unit tests: the real routes, middleware, identity, limits and
chart sizer, answered in the test's own event loop with aiohttp's test client."""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from execplanner.cluster.charts import ChartSettings
from execplanner.engine import Calendar, Resources
from execplanner.planner.accesslog import AccessLog
from execplanner.planner.chartsize import ChartSizer
from execplanner.planner.http.app import make_app
from execplanner.planner.http.common import Service
from execplanner.planner.identity import Authenticator
from execplanner.planner.metrics import Metrics
from execplanner.planner.settings import PlannerSettings

GI = 1 << 30
STATIC = {"token-alice": "alice", "token-bob": "bob"}


class FakeCache:
    """What the routes read of planner/cache.py's Cache: synced, two 16-core nodes, no plans."""

    synced = True
    informers: list = []

    def __init__(self) -> None:
        self.calendar = Calendar()
        for name in ("n1", "n2"):
            self.calendar.set_node(name, Resources(16000, 64 * GI, 0, 100 * GI, 110),
                                   {"kubernetes.io/hostname": name})
        self.plans: dict[tuple[str, str], dict[str, Any]] = {}
        self.runs: dict = {}
        self.offersets: dict = {}
        self.sessions: dict = {}
        self.by_uid: dict = {}

    def age(self) -> float:
        return 0.0

    async def wait_plan(self, key, predicate, timeout: float):
        return self.plans.get(key)


class FakeKube:
    """The API server: plans are created into the fake cache."""

    def __init__(self, cache: FakeCache) -> None:
        self.cache, self.created = cache, []

    async def ensure_namespace(self, name: str, user: str) -> None:
        pass

    async def create_plan(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        plan = {**body, "metadata": {**body["metadata"], "namespace": namespace,
                                     "creationTimestamp": "2026-01-01T00:00:00Z"}}
        self.created.append(plan)
        self.cache.plans[(namespace, plan["metadata"]["name"])] = plan
        return plan

    async def get_plan(self, namespace: str, name: str):
        return self.cache.plans.get((namespace, name))


def make_service(tmp_path: Path, chart_cfg: ChartSettings | None = None, entries: int = 16,
                 **settings: Any) -> Service:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("".join(f"{t},{u}\n" for t, u in STATIC.items()))
    cfg = PlannerSettings(token_file=str(tokens), **settings)
    cache = FakeCache()
    metrics = Metrics(cache_age=lambda: 0.0, nodes=lambda: 2, bookings=lambda: 0, searches=lambda: (0, 0))
    return Service(settings=cfg, cache=cache, auth=Authenticator(cfg), kube=FakeKube(cache),  # type: ignore[arg-type]
                   metrics=metrics, charts=ChartSizer(chart_cfg or ChartSettings(), entries=entries),
                   access=AccessLog(False))


async def client_for(svc: Service) -> TestClient:
    client = TestClient(TestServer(make_app(svc)))
    await client.start_server()
    return client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- a chart repository on loopback, counting what is fetched from it --------------------------------

def helm_binary() -> str:
    from execplanner import localrun
    path = localrun.cluster().helm
    if not os.path.exists(path):
        raise AssertionError("helm is not built (run `make build`): charts render through it")
    return path


def write_chart(directory: Path, name: str = "tiny", cpu: str = "2", extra: dict[str, bytes] | None = None) -> Path:
    """A chart of one Deployment (replicas from values, `cpu` cores and 1Gi a pod)."""
    (directory / "templates").mkdir(parents=True)
    (directory / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: 0.1.0\n")
    (directory / "values.yaml").write_text("replicas: 1\n")
    (directory / "templates" / "web.yaml").write_text(textwrap.dedent("""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: "{{ .Release.Name }}-web"}
        spec:
          replicas: {{ .Values.replicas }}
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers:
                - {name: web, image: registry.k8s.io/pause:3.10, resources: {requests: {cpu: "CPU", memory: 1Gi}}}
        """).replace("CPU", cpu))
    for relative, data in (extra or {}).items():
        (directory / relative).write_bytes(data)
    return directory


class ChartRepo:
    """Packaged charts and their index.yaml, served over HTTP on 127.0.0.1; `hits` counts requests."""

    def __init__(self, root: Path) -> None:
        self.root, self.hits = root, 0
        self.served = root / "served"
        self.served.mkdir(parents=True)
        self.server: TestServer | None = None

    async def start(self, charts: list[Path]) -> ChartRepo:
        async def serve(request: web.Request) -> web.StreamResponse:
            self.hits += 1
            path = self.served / request.match_info["name"]
            if not path.is_file():
                raise web.HTTPNotFound()
            # Bytes as they are (a FileResponse would say Content-Encoding: gzip for a .tgz).
            kind = "application/gzip" if path.suffix == ".tgz" else "text/yaml"
            return web.Response(body=path.read_bytes(), content_type=kind)
        app = web.Application()
        app.router.add_get("/{name}", serve)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        helm, env = helm_binary(), {**os.environ, "HELM_CACHE_HOME": str(self.root / "h"),
                                    "HELM_CONFIG_HOME": str(self.root / "h"), "HELM_DATA_HOME": str(self.root / "h")}
        for chart in charts:
            subprocess.run([helm, "package", str(chart), "-d", str(self.served)], env=env, check=True,
                           capture_output=True)
        subprocess.run([helm, "repo", "index", str(self.served), "--url", self.url], env=env, check=True,
                       capture_output=True)
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.port}"

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()
