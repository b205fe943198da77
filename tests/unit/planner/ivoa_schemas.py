"""JSON Schemas of the IVOA answers, written by hand from the documents' own field lists, that
the tests hold every answer of /accepts, /offersets and /sessions to (the unit tests through
fake_service.CheckedClient, the integration tests through a hook on requests). They are not
generated from the service's models (src/execplanner/api/ivoa.py): a schema that agreed with
the service by construction would prove nothing.

- **ExecutionBroker** (IVOA working draft, github.com/ivoa-std/ExecutionBroker):
  docs/schema/openapi.yaml (AbstractComponent, OfferSetResponse, ExecutionSessionResponse,
  ExecutionSessionStatus, AbstractExecutable, ExecutionResourceList, the simple compute
  resource, ScheduleRequestBlock, ScheduleOfferItem, AbstractOption, EnumValueOption),
  components/messages.yaml (MessageItem), components/utils.yaml (MinMaxLong,
  MinMaxComputeLong, ComputeUnitsEnum, ISO8601Duration, ISO8601Interval) and the types/ files
  (offersets/offerset-response-1.0.yaml, sessions/execution-session-response-1.0.yaml,
  resources/compute/simple-compute-1.0.yaml). Where they differ: openapi.yaml requires an
  offer set's `expires`, types/offersets only `uuid` and `href`; here `expires` is required
  when the result is YES (there are offers, and they expire) and not otherwise.
  types/sessions lists a required `type` that none of its properties defines; not here. The
  draft's ISO8601Interval pattern has an atomic group, `(?>[^\\/]+)`, which JSON Schema's
  regular expressions (ECMA-262) do not have; `[^\\/]+` matches the same strings.
- **ExecutionPlanner** (IVOA note, ExecutionPlanner.tex in the same repository, and its
  examples): the answer's `reponseword` YES or NO (`responseword` too, as this service also
  sends it), `servicetype` and `serviceinfo.endpoint` with a YES, the reasons of a NO under
  `reponseinfo.reasons` as `{httpcode, text}`, alternatives under `interfaces`, and the
  offered `resources`: mincores and maxcores as numbers, memory as text with a unit (8G),
  durations as the short forms (10m, 9h30m) or ISO 8601 text, or seconds.

The service's own additions (a session's `taskRun` and `log`, an answer's `start`, `nodes`,
`footprint`, the list wrappers `{"offersets": [...]}` and `{"sessions": [...]}`) are allowed:
the draft's objects are open (no additionalProperties: false).
"""
from __future__ import annotations

import json
import re
from typing import Any

import jsonschema_rs
import yaml

STRING = {"type": "string"}
DATE_TIME = {"type": "string", "format": "date-time"}

# -- components/utils.yaml ----------------------------------------------------------------------
ISO8601_DURATION = {"type": "string", "pattern": (
    r"^(-?)P(?=\d|T\d)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)([DW]))?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")}
ISO8601_INTERVAL = {"type": "string", "pattern": (
    r"^(\d{4}(?:-\d{2}){2}T\d{2}(?::\d{2}){2}[^\/]+)\/"
    r"(P(?=.)(?:\d+Y)?(?:\d+M)?(?:\d+D)?(?:T(?=.)(?:\d+H)?(?:\d+M)?(?:\d+S)?)?)$")}
NAME_VALUE_MAP = {"type": "object", "additionalProperties": STRING}
MIN_MAX_LONG = {"type": "object", "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}}
COMPUTE_UNITS = ["kB", "kiB", "MB", "MiB", "GB", "GiB", "TB", "TiB", "PB", "PiB", "EB", "EiB", "ZB", "ZiB", "YB",
                 "YiB"]
MIN_MAX_COMPUTE_LONG = {"allOf": [MIN_MAX_LONG, {"type": "object", "properties": {"units": {"enum": COMPUTE_UNITS}}}]}
MINIMAL = {"type": "object", "properties": {"minimal": {"type": "boolean"}}}

# -- components/messages.yaml -------------------------------------------------------------------
MESSAGE_ITEM = {"type": "object", "properties": {
    "type": STRING, "time": DATE_TIME, "level": {"enum": ["DEBUG", "WARN", "ERROR", "INFO", "OTHER"]},
    "template": STRING, "values": NAME_VALUE_MAP, "message": STRING}}

# -- openapi.yaml ------------------------------------------------------------------------------------
ABSTRACT_COMPONENT = {"type": "object", "properties": {
    "uuid": {"type": "string", "format": "uuid"}, "href": STRING, "name": STRING, "created": DATE_TIME,
    "messages": {"type": "array", "items": MESSAGE_ITEM}}}
SESSION_STATES = ["PROPOSED", "OFFERED", "ACCEPTED", "REJECTED", "EXPIRED", "WAITING", "PREPARING", "READY", "RUNNING",
                  "RELEASING", "COMPLETED", "FAILED", "CANCELLED"]
SIMPLE_COMPUTE = "https://www.purl.org/ivoa.net/EB/schema/types/resources/compute/simple-compute-1.0.yaml"
SIMPLE_COMPUTE_RESOURCE = {"type": "object", "properties": {
    "cores": {"type": "object", "properties": {"requested": {"allOf": [MIN_MAX_LONG, MINIMAL]},
                                               "offered": MIN_MAX_LONG}},
    "memory": {"type": "object", "properties": {"requested": {"allOf": [MIN_MAX_COMPUTE_LONG, MINIMAL]},
                                                "offered": MIN_MAX_COMPUTE_LONG}},
    "volumes": {"type": "array", "items": {"allOf": [ABSTRACT_COMPONENT, {"type": "object", "properties": {
        "path": STRING, "mode": {"enum": ["READONLY", "READWRITE"]}, "resource": STRING}}]}}}}
ABSTRACT_COMPUTE_RESOURCE = {"allOf": [
    ABSTRACT_COMPONENT,
    {"type": "object", "required": ["type"], "properties": {"type": STRING}},
    # the discriminator: a simple compute resource is one
    {"if": {"properties": {"type": {"const": SIMPLE_COMPUTE}}}, "then": SIMPLE_COMPUTE_RESOURCE}]}
TYPED_COMPONENT = {"allOf": [ABSTRACT_COMPONENT, {"type": "object", "required": ["type"],
                                                  "properties": {"type": STRING}}]}
EXECUTION_RESOURCE_LIST = {"type": "object", "properties": {
    "compute": {"type": "array", "items": ABSTRACT_COMPUTE_RESOURCE},
    "storage": {"type": "array", "items": TYPED_COMPONENT},
    "data": {"type": "array", "items": TYPED_COMPONENT}}}
ABSTRACT_EXECUTABLE = TYPED_COMPONENT
ABSTRACT_OPTION = {"allOf": [
    {"type": "object", "required": ["type", "path"], "properties": {"type": STRING, "path": STRING}},
    {"if": {"properties": {"type": {"const": "uri:enum-value-option"}}},
     "then": {"required": ["values"], "properties": {"values": {"type": "array", "items": STRING}}}}]}
SCHEDULE_REQUEST_BLOCK = {"type": "object", "properties": {
    "duration": ISO8601_DURATION, "start": {"type": "array", "items": ISO8601_INTERVAL}}}
SCHEDULE_OFFER_ITEM = {"type": "object", "properties": {"duration": ISO8601_DURATION, "start": ISO8601_INTERVAL}}
OFFER_SET_LINK = {"type": "object", "properties": {"uuid": {"type": "string", "format": "uuid"}, "href": STRING}}
EXECUTION_SESSION_RESPONSE = {"allOf": [ABSTRACT_COMPONENT, {
    "type": "object", "required": ["uuid", "state", "href"],
    "properties": {
        "offerset": OFFER_SET_LINK,
        "state": {"enum": SESSION_STATES},
        "expires": DATE_TIME,
        "executable": ABSTRACT_EXECUTABLE,
        "resources": EXECUTION_RESOURCE_LIST,
        "schedule": {"type": "object", "properties": {
            "requested": SCHEDULE_REQUEST_BLOCK, "preparing": SCHEDULE_OFFER_ITEM,
            "executing": SCHEDULE_OFFER_ITEM, "releasing": SCHEDULE_OFFER_ITEM}},
        "options": {"type": "array", "items": ABSTRACT_OPTION}}}]}
OFFER_SET_RESPONSE = {"allOf": [ABSTRACT_COMPONENT, {
    "type": "object", "required": ["uuid", "href"],
    "properties": {"result": {"enum": ["YES", "NO"]}, "expires": DATE_TIME,
                   "offers": {"type": "array", "items": EXECUTION_SESSION_RESPONSE}},
    "if": {"required": ["result"], "properties": {"result": {"const": "YES"}}},
    "then": {"required": ["expires"], "properties": {"offers": {"minItems": 1}}}}]}
UPDATE_REQUEST = {"type": "object", "properties": {"update": {"type": "object", "required": ["type", "path"],
                                                              "properties": {"type": STRING, "path": STRING}}}}

# -- the ExecutionPlanner note -----------------------------------------------------------------------
NOTE_CORES = {"type": "number", "exclusiveMinimum": 0}
NOTE_MEMORY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?([kKMGTPE]i?)?$"}
NOTE_DURATION = {"anyOf": [
    {"type": "string", "pattern": r"^(?=[0-9])([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"},  # 10m, 9h30m
    ISO8601_DURATION,
    {"type": "string", "pattern": r"^[0-9]+$"},  # seconds, as text
    {"type": "number", "minimum": 0}]}  # seconds
NOTE_RESOURCES = {"type": "object", "additionalProperties": False, "properties": {
    "mincores": NOTE_CORES, "maxcores": NOTE_CORES, "minmemory": NOTE_MEMORY, "maxmemory": NOTE_MEMORY,
    "minduration": NOTE_DURATION, "maxduration": NOTE_DURATION, "minstartup": NOTE_DURATION,
    "maxstartup": NOTE_DURATION}}
WORD = {"enum": ["YES", "NO"]}
SERVICE_INFO = {"type": "object", "required": ["endpoint"], "properties": {"endpoint": {
    "type": "string", "pattern": "^https?://"}}}
SERVICE_TYPE = {"type": "string", "pattern": "^[a-z][a-z0-9+.-]*:"}  # a URI, e.g. uri://docker-uws
REASONS = {"type": "object", "required": ["reasons"], "properties": {"reasons": {"type": "array", "minItems": 1,
    "items": {"type": "object", "required": ["text"], "properties": {"httpcode": {"type": "integer"},
                                                                     "text": {"type": "string", "minLength": 1}}}}}}
NOTE_ANSWER = {
    "type": "object", "required": ["reponseword"],
    "properties": {
        "reponseword": WORD, "responseword": WORD, "servicetype": SERVICE_TYPE, "serviceinfo": SERVICE_INFO,
        "resources": NOTE_RESOURCES, "reponseinfo": REASONS,
        "interfaces": {"type": "array", "items": {"type": "object", "properties": {
            "servicetype": SERVICE_TYPE, "serviceinfo": SERVICE_INFO}}}},
    "allOf": [
        {"if": {"properties": {"reponseword": {"const": "YES"}}},
         "then": {"required": ["servicetype", "serviceinfo"]},
         "else": {"required": ["reponseinfo"]}},
        # Both spellings say the same word.
        {"if": {"required": ["responseword"], "properties": {"responseword": {"const": "YES"}}},
         "then": {"properties": {"reponseword": {"const": "YES"}}}},
        {"if": {"required": ["responseword"], "properties": {"responseword": {"const": "NO"}}},
         "then": {"properties": {"reponseword": {"const": "NO"}}}}]}

# -- which answer is which -----------------------------------------------------------------------------
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ANSWERS = [
    (re.compile(r"^/accepts$"), NOTE_ANSWER),
    (re.compile(r"^/offersets$"), {"type": "object", "required": ["offersets"], "properties": {
        "offersets": {"type": "array", "items": OFFER_SET_RESPONSE}}}),
    (re.compile(rf"^/offersets/{UUID}$"), OFFER_SET_RESPONSE),
    (re.compile(r"^/sessions$"), {"type": "object", "required": ["sessions"], "properties": {
        "sessions": {"type": "array", "items": EXECUTION_SESSION_RESPONSE}}}),
    (re.compile(rf"^/sessions/{UUID}$"), EXECUTION_SESSION_RESPONSE),
]
_VALIDATORS: dict[int, Any] = {}


def schema_for(path: str) -> dict[str, Any] | None:
    """The schema of a successful answer at `path` (below the service's base URL), or None."""
    return next((schema for pattern, schema in ANSWERS if pattern.match(path)), None)


def problems(schema: dict[str, Any], document: Any) -> list[str]:
    """Where `document` departs from `schema`, one line each (empty: it conforms)."""
    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = jsonschema_rs.validator_for(schema, validate_formats=True)
    return [f"/{'/'.join(str(p) for p in e.instance_path)}: {e.message}" for e in validator.iter_errors(document)]


def check(path: str, status: int, content_type: str, body: bytes | str) -> None:
    """Raise AssertionError, naming every departure, when an answer of /accepts, /offersets or
    /sessions with status 200 does not conform to its document's schema."""
    schema = schema_for(path)
    if schema is None or status != 200:
        return
    text = body.decode() if isinstance(body, bytes) else body
    document = yaml.safe_load(text) if "yaml" in content_type else json.loads(text)
    found = problems(schema, document)
    assert not found, f"the answer of {path} does not conform to the IVOA document:\n  " + "\n  ".join(found) + \
        f"\n{json.dumps(document, indent=1)[:4000]}"
