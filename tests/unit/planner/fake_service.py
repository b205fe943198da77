"""The planner's aiohttp application over fakes of what lies below it (the watch cache, the
API server), for HTTP-level unit tests: the real routes, middleware, identity, limits and
chart sizer, answered in the test's own event loop with aiohttp's test client."""
from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse, web
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

from . import ivoa_schemas

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
        self.logs: dict[tuple[str, str], str] = {}  # (namespace, pod) -> its log

    async def pod_log(self, namespace: str, pod: str, container: str | None, limit_bytes: int = 1 << 20) -> str:
        from kubernetes_asyncio.client.exceptions import ApiException
        if (namespace, pod) not in self.logs:
            raise ApiException(status=404, reason="Not Found")
        return self.logs[(namespace, pod)][:limit_bytes]

    async def ensure_namespace(self, name: str, user: str) -> None:
        pass

    async def create_plan(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        plan = {**body, "metadata": {**body["metadata"], "namespace": namespace, "resourceVersion": "1",
                                     "uid": f"uid-{len(self.created)}", "creationTimestamp": "2026-01-01T00:00:00Z"}}
        self.created.append(plan)
        self.cache.plans[(namespace, plan["metadata"]["name"])] = plan
        return plan

    async def get_plan(self, namespace: str, name: str):
        return self.cache.plans.get((namespace, name))

    async def patch_spec(self, namespace: str, name: str, spec: dict[str, Any], resource_version: str | None = None):
        plan = self.cache.plans.get((namespace, name))
        if plan is None:
            return None
        plan["spec"] = {**plan["spec"], **spec}
        plan["metadata"]["resourceVersion"] = str(int(plan["metadata"]["resourceVersion"]) + 1)
        return plan


def make_offers(svc: Service, now: int, expires_in: int = 300) -> None:
    """What the operator does with the fake cache's new Manual plans: their offers, from the
    engine as operator/booking.py writes them (a chart's from a stand-in footprint: one pod of
    2 cores and 1Gi per `values.replicas`), in status; or Rejected, with the reasons. And the
    indexes of offer sets and sessions that the planner's cache keeps."""
    from execplanner.api.plan import PlanSpec
    from execplanner.engine import PodRequest, format_cpu, format_instant, format_memory
    from execplanner.engine.specs import plan_request
    from execplanner.planner.cache import OFFERSET_LABEL, session_uuid

    cache = svc.cache
    for key, plan in cache.plans.items():
        if plan.get("status") or (plan["spec"].get("acceptPolicy") != "Manual"):
            continue
        spec = PlanSpec.model_validate(plan["spec"])
        pods = None
        if spec.executable.is_helm:
            replicas = int((spec.executable.values or {}).get("replicas", 1))
            pods = [PodRequest(f"web-{i}", Resources(2000, GI, 0, 0, 1)) for i in range(replicas)]
        result = cache.calendar.offers(plan_request(spec, pods=pods), now, count=spec.offers, namespace=key[0])
        if not result.offers:
            plan["status"] = {"phase": "Rejected", "message": "; ".join(r.message for r in result.reasons)}
        else:
            plan["status"] = {"phase": "Offered", "message": f"{len(result.offers)} offers", "offers": [
                {"id": str(i), "start": format_instant(o.start), "end": format_instant(o.end),
                 "cores": format_cpu(o.cpu), "memory": format_memory(o.memory), "gpus": o.gpu,
                 "expires": format_instant(now + expires_in), "placements": []}
                for i, o in enumerate(result.offers, 1)]}
        osid = plan["metadata"]["labels"][OFFERSET_LABEL]
        cache.offersets[osid] = key
        for o in plan["status"].get("offers") or []:
            cache.sessions[session_uuid(osid, o["id"])] = (key, o["id"])


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


class CheckedClient(TestClient):
    """aiohttp's test client, holding every answer of /accepts, /offersets and /sessions to the
    IVOA documents' schemas (ivoa_schemas.py): one that departs fails the request."""

    async def _request(self, method: str, path: Any, **kwargs: Any) -> ClientResponse:
        resp = await super()._request(method, path, **kwargs)
        body = await resp.read()  # (kept: the test reads it again)
        ivoa_schemas.check(resp.url.path, resp.status, resp.content_type, body)
        return resp


async def client_for(svc: Service) -> TestClient:
    client = CheckedClient(TestServer(make_app(svc)))
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
