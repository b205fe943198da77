"""The service's OpenAPI 3.1 document, served at /openapi.json. The tests run schemathesis
against it: no 5xx, and no answer that contradicts it."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import tasks
from .uws import PHASES

routes = web.RouteTableDef()
STR = {"type": "string"}
NUM_OR_STR = {"type": ["string", "number"]}
MINMAX = {"type": "object", "properties": {"min": NUM_OR_STR, "max": NUM_OR_STR, "minimal": {"type": "boolean"}}}
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


SCHEMAS: dict[str, Any] = {
    "Error": {"type": "object", "required": ["error", "status"],
              "properties": {"error": STR, "status": {"type": "integer"}, "field": STR}},
    "AcceptsRequest": {"type": "object", "required": ["tasktype"], "properties": {
        "tasktype": {"type": "string", "enum": sorted(tasks.NOTE_TYPES)},
        "taskinfo": {"type": "object", "properties": {"image": STR, "chart": STR, "repository": STR,
                                                      "version": STR, "values": {"type": "object"}}},
        "resources": {"type": "object", "properties": {k: NUM_OR_STR for k in (
            "mincores", "maxcores", "minmemory", "maxmemory", "minduration", "maxduration", "minstartup",
            "maxstartup")}}}},
    "AcceptsResponse": {"type": "object", "required": ["responseword", "reponseword"], "properties": {
        "responseword": {"type": "string", "enum": ["YES", "NO"]},
        "reponseword": {"type": "string", "enum": ["YES", "NO"]},
        "tasktype": STR, "servicetype": STR,
        "serviceinfo": {"type": "object", "properties": {"endpoint": STR}},
        "resources": {"type": "object", "additionalProperties": STR},
        "start": {"type": ["string", "null"]}, "nodes": {"type": "array", "items": STR},
        "reponseinfo": {"$ref": "#/components/schemas/ResponseInfo"},
        "responseinfo": {"$ref": "#/components/schemas/ResponseInfo"}}},
    "ResponseInfo": {"type": "object", "properties": {"reasons": {"type": "array", "items": {
        "type": "object", "properties": {"httpcode": {"type": "integer"}, "text": STR}}}}},
    "OfferSetRequest": {"type": "object", "required": ["executable"], "properties": {
        "name": STR,
        "executable": {"type": "object", "required": ["type", "image"], "properties": {
            "type": {"type": "string", "enum": [tasks.EB_DOCKER]},
            "image": {"type": ["string", "object"]}, "privileged": {"type": "boolean"},
            "entrypoint": {"type": ["string", "array"], "items": STR},
            "environment": {"type": "object", "additionalProperties": STR}}},
        "resources": {"type": "object", "properties": {"compute": {"type": "array", "maxItems": 1, "items": {
            "type": "object", "properties": {"type": STR, "cores": {"type": "object", "properties": {"requested": MINMAX}},
                                             "memory": {"type": "object", "properties": {"requested": MINMAX}}}}}}},
        "schedule": {"type": "object", "properties": {"requested": {"type": "object", "properties": {
            "duration": {"type": ["string", "object"]}, "start": {"type": "array", "items": STR}}}}},
        "offers": {"type": "integer", "minimum": 1, "maximum": 20}}},
    "Session": {"type": "object", "required": ["uuid", "href", "state", "offerset"], "properties": {
        "uuid": STR, "href": STR, "name": STR, "created": {"type": ["string", "null"]},
        "expires": {"type": ["string", "null"]},
        "messages": {"type": "array", "items": STR},
        "offerset": {"type": "object", "properties": {"uuid": STR, "href": STR}},
        "state": {"type": "string", "enum": ["PROPOSED", "OFFERED", "ACCEPTED", "REJECTED", "EXPIRED", "WAITING",
                                            "PREPARING", "READY", "RUNNING", "RELEASING", "COMPLETED", "FAILED",
                                            "CANCELLED"]},
        "executable": {}, "resources": {"type": "object"}, "schedule": {"type": "object"},
        "options": {"type": "array", "items": {"type": "object"}}, "taskRun": STR, "log": STR}},
    "OfferSet": {"type": "object", "required": ["uuid", "href", "result", "offers"], "properties": {
        "uuid": STR, "href": STR, "name": STR, "created": {"type": ["string", "null"]},
        "expires": {"type": ["string", "null"]}, "result": {"type": "string", "enum": ["YES", "NO", "PENDING"]},
        "messages": {"type": "array", "items": STR},
        "offers": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}}}},
    "UpdateRequest": {"type": "object", "required": ["update"], "properties": {"update": {
        "type": "object", "required": ["path", "value"], "properties": {
            "type": {"type": "string", "enum": ["uri:enum-value-update"]}, "path": {"type": "string", "enum": ["state"]},
            "value": {"type": "string", "enum": ["ACCEPTED", "REJECTED", "CANCELLED"]}}}}},
    "Calendar": {"type": "object", "required": ["now", "nodes"], "properties": {
        "now": STR, "from": STR, "to": STR, "nodes": {"type": "array", "items": {"type": "object", "properties": {
            "name": STR, "ready": {"type": "boolean"}, "allocatable": {"type": "object"}, "used": {"type": "object"},
            "bookings": {"type": "array", "items": {"type": "object"}}}}}}},
}


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
                "application/json": {"schema": {"type": "object", "properties": {
                    "offersets": {"type": "array", "items": {"$ref": "#/components/schemas/OfferSet"}}}}}}}}),
            "post": _op("Ask for offers (ExecutionBroker); each holds capacity until it expires",
                        {"303": SEE_OTHER}, body=j("OfferSetRequest"))},
        "/offersets/{uuid}": {"get": _op("An offer set", {"200": {"description": "the offer set",
                                                                  "content": j("OfferSet")}},
                                         params=[_path_param("uuid", "uuid")])},
        "/sessions": {"get": _op("The caller's sessions (offers and the runs they became)", {"200": {
            "description": "sessions", "content": {"application/json": {"schema": {"type": "object", "properties": {
                "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}}}}}}}})},
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
