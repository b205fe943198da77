"""Operations: liveness, readiness (once every watch has listed), Prometheus metrics."""
from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .common import service

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    cache = service(request).cache
    if not cache.synced:
        waiting = [i.path for i in cache.informers if not i.synced.is_set()]
        return web.json_response({"status": "syncing", "waiting_for": waiting}, status=503)
    return web.json_response({"status": "ready", "cache_age_seconds": round(cache.age(), 3),
                              "nodes": len(cache.calendar.nodes), "plans": len(cache.plans)})


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(service(request).metrics.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
