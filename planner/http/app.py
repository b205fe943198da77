"""The planner's aiohttp application: routes, and the middleware every answer passes through
(errors as JSON that name the field, never a traceback; latency metrics; one structured log
line per request)."""
from __future__ import annotations

import asyncio
import logging
import time

import aiohttp
from aiohttp import web

from ..tasks import BadRequest
from . import accepts, broker, calendar, federation, ops, uws
from .common import SERVICE, Problem, Service
from .openapi import routes as openapi_routes
from .web import routes as page_routes  # the web page (not aiohttp's web)

log = logging.getLogger("execplanner.planner.http")


def _error(status: int, message: str, field: str | None = None, headers: dict | None = None) -> web.Response:
    if field and not message.startswith(f"{field}:"):
        message = f"{field}: {message}"  # the field is named in the message too, for people
    body = {"error": message, "status": status}
    if field:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def errors(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as e:
        return _error(e.status, e.message, e.field, e.headers)
    except BadRequest as e:
        return _error(400, e.message, e.field)
    except web.HTTPRedirection:
        raise
    except web.HTTPException as e:  # aiohttp's own: 404 no route, 405, 413 too large ...
        if e.status == 413:
            return _error(413, f"the request body is larger than {request.app[SERVICE].settings.max_body_bytes} bytes")
        if e.status == 405:
            return _error(405, f"{request.method} is not allowed on {request.path}", headers={"Allow": e.headers.get("Allow", "")})
        if e.status == 404:
            return _error(404, f"there is nothing at {request.path}")
        return _error(e.status, e.reason)
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as e:
        # The API server is away (restarting, unreachable): not this request's fault, and it
        # will pass again; the Kubernetes client's own errors are read where they are made.
        log.warning("the API server could not be reached answering %s %s: %s", request.method, request.path, e)
        return _error(503, "the planner cannot reach the Kubernetes API server just now; try again shortly",
                      headers={"Retry-After": "2"})
    except Exception:
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return _error(500, "the planner failed to answer this request; the error is in its log")


OPEN = ("/healthz", "/readyz", "/metrics", "/openapi.json")


@web.middleware
async def warm_up(request: web.Request, handler) -> web.StreamResponse:
    """Until every watch has listed, answers would be made from a partial view: say so instead."""
    if not request.app[SERVICE].cache.synced and request.path not in OPEN:
        return _error(503, "the planner is starting and has not read the cluster's state yet; try again shortly",
                      headers={"Retry-After": "2"})
    return await handler(request)


@web.middleware
async def observe(request: web.Request, handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        svc = request.app[SERVICE]
        svc.metrics.requests.labels(name, request.method, str(status)).observe(elapsed)
        if name not in OPEN:
            svc.access.record(request.method, request.path, name, status, round(elapsed * 1000, 2))


def make_app(svc: Service) -> web.Application:
    app = web.Application(middlewares=[observe, errors, warm_up], client_max_size=svc.settings.max_body_bytes)
    app[SERVICE] = svc
    for module_routes in (ops.routes, accepts.routes, broker.routes, uws.routes, calendar.routes, federation.routes,
                          page_routes, openapi_routes):
        app.add_routes(module_routes)
    return app
