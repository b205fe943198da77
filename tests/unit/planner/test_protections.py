"""The planner's protections against hostile input, at the HTTP level (the real app over fakes
of the cache and the API server; fake_service.py): one reading of units (512m memory is a 400
naming the field), no fetch for strangers (charts from unlisted repositories refused before any
network access, anonymous callers answered about charts only from an allowlisted repository or
the render cache), bounded renders (a slot limit, a short queue, then 429 with Retry-After; a
deadline and a size limit on the downloaded chart; an LRU render cache), per-caller rate limits
(429 with Retry-After), and every refused token a 401 with its reason (docs/security.md)."""
from __future__ import annotations

import asyncio
import io
import os
import tarfile
import time
from pathlib import Path

import pytest

from execplanner import devidentity
from execplanner.cluster import allowlist, charts
from execplanner.cluster.allowlist import AllowlistSettings
from execplanner.cluster.charts import ChartRef, ChartSettings
from execplanner.planner.chartsize import Busy, ChartSizer
from execplanner.planner.ratelimit import RateLimiter

from .fake_service import ChartRepo, bearer, client_for, helm_binary, make_service, write_chart
from .issuer import AUDIENCE, ISSUER, Issuer

CONTAINER = {"tasktype": "uri://docker-container", "taskinfo": {"image": "busybox:1.36"}}
POD = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}]


def allow_charts(monkeypatch, repositories: list[str], local: bool = False) -> None:
    monkeypatch.setattr(allowlist, "settings", lambda: AllowlistSettings(
        allowed_registries=[], allowed_chart_repositories=repositories, allow_local_charts=local))


def chart_task(chart: str, repository: str | None = None, **values) -> dict:
    info = {"chart": chart, **({"repository": repository} if repository else {}), **({"values": values} if values else {})}
    return {"tasktype": "uri://kubernetes-helm", "taskinfo": info, "resources": {"minduration": "1h"}}


@pytest.fixture
def chart_cfg(tmp_path: Path) -> ChartSettings:
    return ChartSettings(helm=helm_binary(), helm_home=str(tmp_path / "helm-home"))


@pytest.fixture
async def repo(tmp_path: Path):
    found = await ChartRepo(tmp_path / "repo").start([write_chart(tmp_path / "charts" / "tiny")])
    yield found
    await found.close()


# -- one reading of units ------------------------------------------------------------------------------

@pytest.mark.parametrize("resources, field, words", [
    ({"minmemory": "512m"}, "resources.minmemory", "'512m' is 0.512 bytes: a task needs at least 1Mi"),
    ({"minmemory": "1Gi", "maxmemory": "1000"}, "resources.maxmemory", "1000 bytes"),
    ({"minduration": "0.5s"}, "resources.minduration", "shorter than a second"),
    ({"maxduration": "PT0S"}, "resources.maxduration", "shorter than a second"),
    ({"mincores": "0.0001"}, "resources.mincores", "less than a thousandth of a core"),
])
async def test_accepts_refuses_sizes_no_task_has_naming_the_field(tmp_path, resources, field, words):
    client = await client_for(make_service(tmp_path))
    try:
        r = await client.post("/accepts", json={**CONTAINER, "resources": resources})
        body = await r.json()
        assert r.status == 400, body
        assert body["field"] == field and body["error"].startswith(f"{field}: ") and words in body["error"], body
    finally:
        await client.close()


async def test_offersets_and_uws_jobs_refuse_512m_too(tmp_path):
    svc = make_service(tmp_path)
    client = await client_for(svc)
    try:
        offerset = {"executable": {"type": "docker-container", "image": "busybox"},
                    "resources": {"compute": [{"memory": {"requested": {"min": "512m"}}}]}}
        r = await client.post("/offersets", json=offerset, headers=bearer("token-alice"), allow_redirects=False)
        body = await r.json()
        assert r.status == 400 and body["field"] == "resources.compute[0].memory.requested.min", body
        assert "0.512 bytes" in body["error"]
        r = await client.post("/uws/jobs", data={"image": "busybox", "memory": "512m"}, headers=bearer("token-alice"),
                              allow_redirects=False)
        body = await r.json()
        assert r.status == 400 and body["field"] == "memory" and "at least 1Mi" in body["error"], body
        r = await client.post("/uws/jobs", data={"image": "busybox", "duration": "0.5s"}, headers=bearer("token-alice"),
                              allow_redirects=False)
        assert r.status == 400 and (await r.json())["field"] == "duration"
        assert svc.kube.created == []  # type: ignore[attr-defined]
        # The same texts, well formed, go through (and the broker's bare numbers are GiB).
        offerset["resources"]["compute"][0]["memory"]["requested"]["min"] = 0.5
        r = await client.post("/offersets", json=offerset, headers=bearer("token-alice"), allow_redirects=False)
        assert r.status == 303, await r.text()
        assert svc.kube.created[-1]["spec"]["resources"]["memory"]["min"] == "512Mi"  # type: ignore[attr-defined]
    finally:
        await client.close()


# -- no fetch for strangers ---------------------------------------------------------------------------------

async def test_charts_from_unlisted_repositories_are_refused_before_any_fetch(tmp_path, monkeypatch, repo, chart_cfg):
    svc = make_service(tmp_path, chart_cfg)
    client = await client_for(svc)
    try:
        for listed, words in (([], "no chart repository is allowed here"),
                              (["https://charts.example.org"], "not an allowed chart repository")):
            allow_charts(monkeypatch, listed)
            for headers in ({}, bearer("token-alice")):  # anonymous or not
                r = await client.post("/accepts", json=chart_task("tiny", repo.url), headers=headers)
                body = await r.json()
                assert r.status == 403 and body["field"] == "taskinfo.repository" and words in body["error"], body
                r = await client.post("/accepts", json=chart_task(f"{repo.url}/tiny-0.1.0.tgz"), headers=headers)
                body = await r.json()
                assert r.status == 403 and body["field"] == "taskinfo.chart", body
        assert repo.hits == 0 and svc.charts.renders == 0
        # Something helm would read as an option is not a chart reference at all.
        allow_charts(monkeypatch, [repo.url])
        r = await client.post("/accepts", json=chart_task("--values=/etc/passwd", repo.url))
        assert r.status == 400 and (await r.json())["field"] == "taskinfo.chart"
        assert repo.hits == 0 and svc.charts.renders == 0
    finally:
        await client.close()


async def test_anonymous_charts_come_from_an_allowlisted_repository_or_the_render_cache(tmp_path, monkeypatch, repo,
                                                                                       chart_cfg):
    svc = make_service(tmp_path, chart_cfg)
    client = await client_for(svc)
    try:
        allow_charts(monkeypatch, ["http://127.0.0.1"], local=True)
        r = await client.post("/accepts", json=chart_task("tiny", repo.url, replicas=3))
        body = await r.json()
        assert r.status == 200 and body["responseword"] == "YES", body["reponseinfo"]
        assert body["resources"]["mincores"] == 6 and "3 pod(s)" in body["footprint"], body
        assert repo.hits >= 1 and svc.charts.renders == 1
        hits = repo.hits
        r = await client.post("/accepts", json=chart_task("tiny", repo.url, replicas=3))
        assert r.status == 200 and svc.charts.renders == 1 and repo.hits == hits  # from the render cache

        # A chart on the planner's own file system (allowed here): rendered for a user with a
        # token, never for an anonymous caller unless the render cache has the answer.
        local = str(write_chart(tmp_path / "local" / "tiny", cpu="1"))
        r = await client.post("/accepts", json=chart_task(local))
        body = await r.json()
        assert r.status == 403 and body["field"] == "taskinfo.chart" and "render cache" in body["error"], body
        assert svc.charts.renders == 1
        r = await client.post("/accepts", json=chart_task(local), headers=bearer("token-alice"))
        assert r.status == 200 and (await r.json())["resources"]["mincores"] == 1
        assert svc.charts.renders == 2
        await svc.charts.footprint(svc.cache.calendar, ChartRef(local), {}, "default")  # as if asked before
        assert svc.charts.renders == 3
        r = await client.post("/accepts", json=chart_task(local))
        assert r.status == 200 and (await r.json())["responseword"] == "YES"
        assert svc.charts.renders == 3
    finally:
        await client.close()


def test_the_charts_allowlist_is_empty_by_default_and_then_fetches_nothing(monkeypatch):
    monkeypatch.delenv("EXECPLANNER_ALLOWED_CHART_REPOSITORIES", raising=False)
    assert AllowlistSettings().allowed_chart_repositories == []
    assert allowlist.chart_allowed("podinfo", "https://stefanprodan.github.io/podinfo", [], allow_local=False)


# -- bounded work --------------------------------------------------------------------------------------------

async def test_renders_are_bounded_then_429_with_retry_after(tmp_path, monkeypatch):
    allow_charts(monkeypatch, ["http://127.0.0.1"])
    svc = make_service(tmp_path, ChartSettings(render_concurrency=2, render_queue=1))
    running, most, release = 0, 0, asyncio.Event()

    async def slow_render(ref, values, namespace):
        nonlocal running, most
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        return POD
    monkeypatch.setattr(svc.charts, "_helm", slow_render)
    client = await client_for(svc)
    try:
        asks = [asyncio.create_task(client.post("/accepts", json=chart_task("tiny", "http://127.0.0.1:1", n=i)))
                for i in range(3)]
        for _ in range(100):
            await asyncio.sleep(0.01)
            if svc.charts.active == 2 and svc.charts.waiting == 1:
                break
        assert (svc.charts.active, svc.charts.waiting) == (2, 1)
        r = await client.post("/accepts", json=chart_task("tiny", "http://127.0.0.1:1", n=99))
        body = await r.json()
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1, body
        assert "at most 2 at once and 1 waiting" in body["error"], body
        # The same question as one under way waits for that render instead of taking a place.
        same = asyncio.create_task(client.post("/accepts", json=chart_task("tiny", "http://127.0.0.1:1", n=0)))
        await asyncio.sleep(0.05)
        assert not same.done()
        release.set()
        for answer in await asyncio.gather(*asks, same):
            assert answer.status == 200, await answer.text()
        assert most == 2 and svc.charts.renders == 3
    finally:
        await client.close()


async def test_the_render_cache_evicts_the_least_recently_used(monkeypatch):
    sizer = ChartSizer(ChartSettings(), entries=2)
    rendered: list[str] = []

    async def render(ref, values, namespace):
        rendered.append(ref.chart)
        return POD
    monkeypatch.setattr(sizer, "_helm", render)
    from execplanner.engine import Calendar
    cal = Calendar()
    for chart in ("a", "b", "a", "c", "a", "b"):  # c evicts b (a was used after b), b comes back
        await sizer.footprint(cal, ChartRef(chart, "http://127.0.0.1"), {}, "ns")
    assert rendered == ["a", "b", "c", "b"]
    assert sizer.cached(ChartRef("a", "http://127.0.0.1"), {}, "ns")
    assert not sizer.cached(ChartRef("c", "http://127.0.0.1"), {}, "ns")  # b pushed out c, the least recent


async def test_a_full_queue_is_busy_before_any_render(monkeypatch):
    sizer = ChartSizer(ChartSettings(render_concurrency=1, render_queue=0))
    gate = asyncio.Event()

    async def render(ref, values, namespace):
        await gate.wait()
        return POD
    monkeypatch.setattr(sizer, "_helm", render)
    from execplanner.engine import Calendar
    first = asyncio.create_task(sizer.footprint(Calendar(), ChartRef("a", "http://127.0.0.1"), {}, "ns"))
    await asyncio.sleep(0.01)
    with pytest.raises(Busy) as busy:
        await sizer.footprint(Calendar(), ChartRef("b", "http://127.0.0.1"), {}, "ns")
    assert busy.value.retry_after >= 1 and sizer.renders == 1
    gate.set()
    await first


async def test_a_render_has_a_deadline(tmp_path):
    hang = tmp_path / "helm"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)
    cfg = ChartSettings(helm=str(hang), helm_home=str(tmp_path / "home"), render_timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(charts.RenderError, match="did not finish within"):
        await charts.render(ChartRef(str(write_chart(tmp_path / "tiny"))), {}, "xp", "ns", cfg=cfg)
    assert time.monotonic() - started < 5


async def test_a_downloaded_chart_over_the_size_limit_is_refused_before_templating(tmp_path, chart_cfg):
    big = write_chart(tmp_path / "charts" / "big", "big", extra={"blob.bin": os.urandom(64 * 1024)})  # incompressible
    bomb = write_chart(tmp_path / "charts" / "bomb", "bomb", extra={"zeros.bin": bytes(4 * 1024 * 1024)})  # packs small
    small = write_chart(tmp_path / "charts" / "tiny")
    repo = await ChartRepo(tmp_path / "repo").start([big, bomb, small])
    try:
        cfg = chart_cfg.model_copy(update={"chart_max_bytes": 32 * 1024})
        with pytest.raises(charts.RenderError, match="more than the 32768 bytes allowed"):
            await charts.render(ChartRef("big", repo.url), {}, "xp", "ns", cfg=cfg)
        with pytest.raises(charts.RenderError, match="unpacks to more than 327680 bytes"):
            await charts.render(ChartRef("bomb", repo.url), {}, "xp", "ns", cfg=cfg)
        manifests = await charts.render(ChartRef("tiny", repo.url), {"replicas": 2}, "xp", "ns", cfg=cfg)
        assert [m["kind"] for m in manifests] == ["Deployment"] and manifests[0]["spec"]["replicas"] == 2
    finally:
        await repo.close()
    # A local package is checked before helm reads it (this helm does not even exist).
    package = tmp_path / "local-big.tgz"
    with tarfile.open(package, "w:gz") as tar:
        data = os.urandom(64 * 1024)
        info = tarfile.TarInfo("big/blob.bin")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    cfg = ChartSettings(helm=str(tmp_path / "no-helm"), chart_max_bytes=32 * 1024)
    with pytest.raises(charts.RenderError, match="more than the 32768 bytes allowed"):
        await charts.render(ChartRef(str(package)), {}, "xp", "ns", cfg=cfg)


# -- per-caller rate limits ---------------------------------------------------------------------------------

def test_the_token_bucket_refills_at_the_rate():
    now = [1000.0]
    limiter = RateLimiter(3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == pytest.approx(20.0)  # 3 a minute: one every 20 s
    assert limiter.take("b") == 0                   # another caller has its own
    now[0] += 20
    assert limiter.take("a") == 0 and limiter.take("a") > 0
    assert RateLimiter(0).take("a") == 0 and not RateLimiter(0).enabled


async def test_costly_endpoints_are_rate_limited_per_caller(tmp_path):
    svc = make_service(tmp_path, rate_limit_per_minute=3)
    client = await client_for(svc)
    try:
        for _ in range(3):
            assert (await client.post("/accepts", json=CONTAINER)).status == 200
        r = await client.post("/accepts", json=CONTAINER)
        body = await r.json()
        assert r.status == 429 and 1 <= int(r.headers["Retry-After"]) <= 20, body
        assert "too many requests" in body["error"] and "anonymous callers from 127.0.0.1" in body["error"], body
        # A user is counted by name, apart from the anonymous callers, across the costly endpoints.
        h = bearer("token-alice")
        assert (await client.post("/accepts", json=CONTAINER, headers=h)).status == 200
        r = await client.post("/uws/jobs", data={"image": "busybox"}, headers=h, allow_redirects=False)
        assert r.status == 303, await r.text()
        offerset = {"executable": {"type": "docker-container", "image": "busybox"}}
        assert (await client.post("/offersets", json=offerset, headers=h, allow_redirects=False)).status == 303
        for path, kwargs in (("/accepts", {"json": CONTAINER}), ("/uws/jobs", {"data": {"image": "busybox"}}),
                             ("/offersets", {"json": offerset})):
            r = await client.post(path, headers=h, allow_redirects=False, **kwargs)
            assert r.status == 429 and "user alice" in (await r.json())["error"] and r.headers["Retry-After"], path
        assert len(svc.kube.created) == 2  # type: ignore[attr-defined]
        # Bob is not slowed down by Alice; cheap reads are not counted.
        assert (await client.post("/accepts", json=CONTAINER, headers=bearer("token-bob"))).status == 200
        assert (await client.get("/uws/jobs", headers=h)).status == 200
    finally:
        await client.close()


# -- identity ---------------------------------------------------------------------------------------------------

async def test_refused_tokens_are_401_with_the_reason(tmp_path):
    issuer = await Issuer(tmp_path).start()
    svc = make_service(tmp_path, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwks_url=issuer.url)
    client = await client_for(svc)
    now = int(time.time())
    stranger = devidentity.private_key(tmp_path / "stranger")
    try:
        assert (await client.get("/sessions", headers=bearer(issuer.token("alice")))).status == 200
        cases = {
            "has expired": issuer.token(exp=now - 3600),
            "not valid yet": issuer.token(nbf=now + 3600),
            "not meant for this service": issuer.token(aud="someone-else"),
            "issued by another issuer": issuer.token(iss="https://evil.example"),
            "not signed (alg: none)": "eyJhbGciOiJub25lIn0." + issuer.token().split(".")[1] + ".",
            "is not one of the issuer's keys": issuer.token(kid="other", key=stranger),
            "signature does not verify": issuer.token(key=stranger),
        }
        for reason, token in cases.items():
            for method, path in (("GET", "/sessions"), ("POST", "/accepts")):
                r = await client.request(method, path, headers=bearer(token), json=CONTAINER)
                body = await r.json()
                assert r.status == 401 and reason in body["error"], (reason, path, body)
                assert r.headers["WWW-Authenticate"].startswith("Bearer"), (reason, path)
    finally:
        await client.close()
        assert issuer.server is not None
        await issuer.server.close()


async def test_an_api_server_away_is_a_503_with_retry_after_not_a_500():
    # What make chaos found: a namespace made while kube-apiserver restarted raised the HTTP
    # client's own connection error, which came out as a 500.
    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from execplanner.planner.http.app import errors

    async def handler(request: web.Request) -> web.Response:
        raise aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:16443")

    app = web.Application(middlewares=[errors])
    app.router.add_post("/uws/jobs", handler)
    async with TestClient(TestServer(app)) as client:
        r = await client.post("/uws/jobs")
        assert r.status == 503 and r.headers["Retry-After"] == "2"
        assert "API server" in (await r.json())["error"]
