"""The service's OpenAPI 3.1 document, served at /openapi.json: the paths here, the bodies
generated from the API's wire models (execplanner.api.ivoa). The tests run schemathesis against
it: no 5xx, and no answer that contradicts it."""
from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic.json_schema import models_json_schema

from execplanner.api import ivoa

from .uws import PHASES
from .web import openapi_paths as web_paths

routes = web.RouteTableDef()
STR = {"type": "string"}
ERROR = {"description": "An error; `error` says what is wrong and `field` where.",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
SEE_OTHER = {"description": "See the created or changed resource (Location).",
             "headers": {"Location": {"schema": STR}}}
XML = {"application/xml": {"schema": STR}}
TEXT = {"text/plain": {"schema": STR}}


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}},
            "application/yaml": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _op(summary: str, responses: dict[str, Any], *, body: dict | None = None, params: list | None = None,
        secure: bool = True) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {**responses, "default": ERROR}}
    if body:
        op["requestBody"] = {"required": True, "content": body}
    if params:
        op["parameters"] = params
    if not secure:
        op["security"] = [{}, {"bearer": []}]
    return op


def _path_param(name: str, fmt: str | None = None) -> dict[str, Any]:
    schema = {"type": "string", **({"format": fmt} if fmt else {})}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(name: str, schema: dict, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


JOB = [_path_param("job")]
UWS_FORM = {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {
    "image": STR, "cmd": {"type": "array", "items": STR}, "cores": STR, "memory": STR, "duration": STR,
    "runId": STR, "PHASE": {"type": "string", "enum": ["RUN"]}}, "required": ["image"]},
    "encoding": {"cmd": {"explode": True}}}}


def _form(name: str, schema: dict) -> dict[str, Any]:
    return {"application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": {name: schema},
                                                             "required": [name]}}}


def _schemas() -> dict[str, Any]:
    """The request and answer bodies, from the API's wire models (execplanner.api.ivoa)."""
    _, top = models_json_schema([(m, "validation") for m in ivoa.DOCUMENTED],
                                ref_template="#/components/schemas/{model}")
    return top["$defs"]


SCHEMAS: dict[str, Any] = _schemas()


def document() -> dict[str, Any]:
    j = _json
    paths: dict[str, Any] = {
        "/accepts": {
            "get": _op("Is this task type run here at all? (ExecutionPlanner note)",
                       {"200": {"description": "YES or NO", "content": j("AcceptsResponse")}},
                       params=[{**_query("tasktype", STR), "required": True}], secure=False),
            "post": _op("Can this task run, and what can be offered? Nothing is booked.",
                        {"200": {"description": "YES with what is offered, or NO with the reasons",
                                 "content": j("AcceptsResponse")}},
                        body=j("AcceptsRequest"), secure=False)},
        "/offersets": {
            "get": _op("The caller's offer sets", {"200": {"description": "offer sets", "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/OfferSets"}}}}}),
            "post": _op("Ask for offers (ExecutionBroker); each holds capacity until it expires",
                        {"303": SEE_OTHER}, body=j("OfferSetRequest"))},
        "/offersets/{uuid}": {"get": _op("An offer set", {"200": {"description": "the offer set",
                                                                  "content": j("OfferSet")}},
                                         params=[_path_param("uuid", "uuid")])},
        "/sessions": {"get": _op("The caller's sessions (offers and the runs they became)", {"200": {
            "description": "sessions", "content": {"application/json": {"schema": {
                "$ref": "#/components/schemas/Sessions"}}}}})},
        "/sessions/{uuid}": {
            "get": _op("A session", {"200": {"description": "the session", "content": j("Session")}},
                       params=[_path_param("uuid", "uuid")]),
            "post": _op("Accept, reject or cancel a session", {"200": {"description": "the session",
                                                                       "content": j("Session")}},
                        params=[_path_param("uuid", "uuid")], body=j("UpdateRequest"))},
        "/sessions/{uuid}/log": {"get": _op("The session's task log", {"200": {"description": "log",
                                                                                 "content": TEXT}},
                                            params=[_path_param("uuid", "uuid")])},
        "/calendar": {"get": _op("Bookings per node over the next hours", {"200": {
            "description": "the calendar", "content": j("Calendar")}},
            params=[_query("hours", {"type": "number", "exclusiveMinimum": 0})])},
        "/uws/jobs": {
            "get": _op("UWS job list", {"200": {"description": "uws:jobs", "content": XML}}, params=[
                _query("PHASE", {"type": "array", "items": {"type": "string", "enum": list(PHASES)}}),
                _query("AFTER", {"type": "string", "format": "date-time"}),
                _query("LAST", {"type": "integer", "minimum": 1})]),
            "post": _op("Create a UWS job (PHASE=RUN starts it)", {"303": SEE_OTHER}, body=UWS_FORM)},
        "/uws/jobs/{job}": {
            "get": _op("The UWS job document (WAIT blocks while it is active)",
                       {"200": {"description": "uws:job", "content": XML}},
                       params=[*JOB, _query("WAIT", {"type": "integer", "minimum": -1}),
                               _query("PHASE", {"type": "string", "enum": list(PHASES)})]),
            "post": _op("ACTION=DELETE, PHASE, EXECUTIONDURATION or DESTRUCTION", {"303": SEE_OTHER},
                        params=JOB, body={"application/x-www-form-urlencoded": {"schema": {
                            "type": "object", "properties": {"ACTION": {"type": "string", "enum": ["DELETE"]},
                                                             "PHASE": {"type": "string", "enum": ["RUN", "ABORT"]},
                                                             "EXECUTIONDURATION": STR, "DESTRUCTION": STR}}}}),
            "delete": _op("Delete the job", {"303": SEE_OTHER}, params=JOB)},
        "/uws/jobs/{job}/phase": {
            "get": _op("The job's phase", {"200": {"description": "phase", "content": TEXT}}, params=JOB),
            "post": _op("PHASE=RUN or PHASE=ABORT", {"303": SEE_OTHER}, params=JOB,
                        body=_form("PHASE", {"type": "string", "enum": ["RUN", "ABORT"]}))},
        "/uws/jobs/{job}/executionduration": {
            "get": _op("Seconds the job may run", {"200": {"description": "seconds", "content": TEXT}}, params=JOB),
            "post": _op("Change it (while PENDING)", {"303": SEE_OTHER}, params=JOB,
                        body=_form("EXECUTIONDURATION", STR))},
        "/uws/jobs/{job}/destruction": {
            "get": _op("When the job is deleted", {"200": {"description": "ISO 8601", "content": TEXT}}, params=JOB),
            "post": _op("Change it", {"303": SEE_OTHER}, params=JOB, body=_form("DESTRUCTION", STR))},
        "/uws/jobs/{job}/error": {"get": _op("The error summary", {"200": {"description": "message",
                                                                          "content": TEXT}}, params=JOB)},
        "/uws/jobs/{job}/quote": {"get": _op("The expected start", {"200": {"description": "ISO 8601 or empty",
                                                                           "content": TEXT}}, params=JOB)},
        "/uws/jobs/{job}/owner": {"get": _op("The owner", {"200": {"description": "user", "content": TEXT}},
                                             params=JOB)},
        "/uws/jobs/{job}/parameters": {"get": _op("The parameters", {"200": {"description": "uws:parameters",
                                                                            "content": XML}}, params=JOB)},
        "/uws/jobs/{job}/results": {"get": _op("The results", {"200": {"description": "uws:results",
                                                                      "content": XML}}, params=JOB)},
        "/uws/jobs/{job}/results/log": {"get": _op("The task's log", {"200": {"description": "log",
                                                                             "content": TEXT}}, params=JOB)},
        "/federation/accepts": {"post": _op(
            "The question to every configured site (EXECPLANNER_SITES), answers ranked and labelled by site",
            {"200": {"description": "each site's answer and status", "content": j("FederatedAnswer")}},
            body=j("AcceptsRequest"))},
        "/federation/offersets": {"post": _op(
            "An offer set at every site; the offers ranked by start, each accepted at its own site (its href)",
            {"200": {"description": "the sites' offers and status", "content": j("FederatedOffers")}},
            body=j("OfferSetRequest"))},
        "/federation/sessions": {"get": _op("The caller's sessions at every site", {"200": {
            "description": "sessions, labelled by site", "content": j("FederatedSessions")}})},
        "/healthz": {"get": _op("Liveness", {"200": {"description": "alive", "content": {
            "application/json": {"schema": {"type": "object"}}}}}, secure=False)},
        "/readyz": {"get": _op("Readiness: every watch has listed", {
            "200": {"description": "ready", "content": {"application/json": {"schema": {"type": "object"}}}},
            "503": {"description": "still syncing", "content": {"application/json": {"schema": {"type": "object"}}}}},
            secure=False)},
        "/metrics": {"get": _op("Prometheus metrics", {"200": {"description": "text exposition format",
                                                              "content": {"text/plain": {"schema": STR}}}},
                                secure=False)},
    }
    paths.update(web_paths(_op, _query, _json))
    return {
        "openapi": "3.1.0",
        "info": {"title": "execplanner planner", "version": "v1alpha1",
                 "description": "IVOA ExecutionPlanner, ExecutionBroker and UWS 1.1 over live Kubernetes state."},
        "paths": paths,
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearer": []}],
    }


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document())
