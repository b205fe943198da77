"""What every endpoint shares: the service's parts, reading bodies (JSON or YAML by
Content-Type), answering (JSON or YAML by Accept), errors that name the field, and who the
caller is."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from aiohttp import web

from ..accesslog import AccessLog
from ..cache import Cache
from ..federation import Federation
from ..chartsize import ChartSizer
from ..identity import Authenticator, Identity, Unauthorized
from execplanner.cluster.kube import Kube
from ..metrics import Metrics
from ..ratelimit import RateLimiter
from ..settings import PlannerSettings

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


@dataclass
class Service:
    settings: PlannerSettings
    cache: Cache
    auth: Authenticator
    kube: Kube
    metrics: Metrics
    charts: ChartSizer
    access: AccessLog = field(default_factory=AccessLog)
    limiter: RateLimiter | None = None  # None: made from settings.rate_limit_per_minute
    federation: Federation | None = None  # None: made from settings.sites

    def __post_init__(self) -> None:
        if self.limiter is None:
            self.limiter = RateLimiter(self.settings.rate_limit_per_minute)
        if self.federation is None and self.settings.sites:
            self.federation = Federation(list(self.settings.sites), self.settings.federation_deadline_seconds)


SERVICE = web.AppKey("service", Service)


def service(request: web.Request) -> Service:
    return request.app[SERVICE]


class Problem(Exception):
    """An answer other than success, with a message that names what is wrong."""

    def __init__(self, status: int, message: str, field: str | None = None, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or {}


def not_found(what: str) -> Problem:
    # Someone else's object is as absent as one that never existed: nothing leaks.
    return Problem(404, f"{what} does not exist")


async def read_body(request: web.Request) -> Any:
    """A JSON or YAML document (by Content-Type; JSON when none is given)."""
    raw = await request.read()
    if not raw.strip():
        raise Problem(400, "the request has no body (a JSON or YAML document is expected)", "body")
    ctype = request.content_type
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise Problem(400, "the body is not UTF-8 text", "body") from None
    if ctype in YAML_TYPES:
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise Problem(400, f"the body is not valid YAML: {str(e).splitlines()[0]}", "body") from None
    if ctype not in ("application/json", "application/octet-stream", "text/plain", "") and not ctype.endswith("+json"):
        raise Problem(415, f"Content-Type {ctype} is not read here: send application/json or application/yaml")
    try:
        return json.loads(text)
    except ValueError as e:
        raise Problem(400, f"the body is not valid JSON: {e}", "body") from None


def wants_yaml(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return any(t in accept for t in YAML_TYPES) and "application/json" not in accept


def answer(request: web.Request, data: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    if wants_yaml(request):
        return web.Response(text=yaml.safe_dump(data, sort_keys=False), status=status, headers=headers,
                            content_type="application/yaml")
    return web.json_response(data, status=status, headers=headers)


async def caller(request: web.Request, required: bool = True) -> Identity | None:
    """The caller's identity; 401 when a token is needed and missing or refused."""
    svc = service(request)
    try:
        who = await svc.auth.identify(request.headers.get("Authorization"))
    except Unauthorized as e:
        raise Problem(401, str(e), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    if who is None and required:
        raise Problem(401, "this needs a bearer token (Authorization: Bearer <token>)",
                      headers={"WWW-Authenticate": "Bearer"})
    return who


async def costly_caller(request: web.Request, endpoint: str, required: bool = True) -> Identity | None:
    """caller(), then the caller's request rate on the costly endpoints (POST /accepts,
    /offersets, /uws/jobs): 429 with Retry-After beyond settings.rate_limit_per_minute. A user
    is counted by name; anonymous callers by their address (one allowance per address)."""
    who = await caller(request, required)
    svc = service(request)
    limiter = svc.limiter
    assert limiter is not None
    wait = limiter.take(f"user:{who.user}" if who else f"address:{request.remote or '?'}")
    if wait:
        after = limiter.retry_after(wait)
        svc.metrics.answers.labels(endpoint, "rate-limited").inc()
        whose = f"user {who.user}" if who else f"anonymous callers from {request.remote or 'this address'}"
        raise Problem(429, f"too many requests: {whose} may make {limiter.per_minute} a minute to POST /accepts, "
                           f"/offersets and /uws/jobs; try again in {after} s", headers={"Retry-After": str(after)})
    return who


def base_url(request: web.Request) -> str:
    configured = service(request).settings.public_url
    return configured.rstrip("/") if configured else f"{request.scheme}://{request.host}"


def with_site_defaults(svc: Service, spec: dict[str, Any]) -> dict[str, Any]:
    """The site's additions to every plan made over HTTP (settings.pod_annotations)."""
    if svc.settings.pod_annotations:
        exe = spec["executable"]
        exe["podAnnotations"] = {**svc.settings.pod_annotations, **(exe.get("podAnnotations") or {})}
    return spec
