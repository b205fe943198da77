"""Malformed plans, generated: ExecutionPlans derived from the CRD's own schema, then broken
one field at a time, applied to the real API server with the real operator watching.

The generator reads crds/executionplans.execplanner.io.yaml (not the pydantic models it is
generated from): it walks the spec's OpenAPI schema, makes a plan every field of which the
schema allows (with the few cross-field facts no single field's schema says pinned: a
container task with an allowed image, tolerations the Pod API takes), picks one path of the
schema at random and puts there what the schema's own types, enums, formats, bounds,
maxLength, maxItems and x-kubernetes-validations (the CEL rules: quantities, durations,
intervals, URLs, min <= max) say is malformed, or is allowed but extreme (a million cores,
an exbibyte, 100-year and 999999999-week durations, windows in the year 9999 or in the past,
32 start windows, empty and 64 KiB strings, label keys no pod takes, ...).

Each plan is created for real (strict field validation, as kubectl does, no dry run) in a
namespace of the test's own, a batch of them at once, and must either
- be refused (400/422) with a message that names the mutated field (or its parent object,
  where a rule of the object reports it), never a 500; or
- be accepted and answered by the operator: Rejected with a reason and a message (an InvalidSpec
  rejection naming the field), or, for a plan the schema allows, any phase of its state
  machine (Offered, Booked ahead, Running, Completed, Failed with a message, Cancelled,
  Pending while suspended, or deleted at its destruction time). A plan left without a status,
  or Booked past its start without its task running, fails the test.
A plan the schema calls malformed that the API server accepts anyway must end Rejected.
Throughout, the operator stays alive and healthy and logs no traceback or failed step; after
each batch is deleted nothing with its plans' UIDs is left (pods, Jobs, TaskRuns, Services,
Secrets, ConfigMaps). At the end every node's whole CPU can be booked now (no booking or hold
leaked into the operator's calendar) and an ordinary small plan is booked, runs and completes.

Hypothesis draws each batch as one example (derandomized: the same plans every run; set
EXECPLANNER_MALFORMED_SEED to explore others). No shrinking: every example costs a round trip
through the cluster, and a failure names the plan, its mutation and what happened.
"""
from __future__ import annotations

import copy
import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from kubernetes import client
from kubernetes.utils.quantity import parse_quantity

from execplanner.api.units import UnitError, parse_instant

from .conftest import wait_until
from .operator_fixture import OperatorProcess
from .test_operator import COMPLETE, plan_body

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
CRD = yaml.safe_load((ROOT / "crds" / "executionplans.execplanner.io.yaml").read_text())
VERSION_SCHEMA = CRD["spec"]["versions"][0]
GROUP, VERSION = CRD["spec"]["group"], VERSION_SCHEMA["name"]
PLANS = CRD["spec"]["names"]["plural"]
SPEC = VERSION_SCHEMA["schema"]["openAPIV3Schema"]["properties"]["spec"]
L_UID = "execplanner.io/plan-uid"  # api/labels.py PLAN_UID: on everything the operator creates

BATCHES = 4          # hypothesis examples
PER_BATCH = 20       # plans per example, created together and waited for together
SETTLE_S = 60        # for every accepted plan of a batch to be answered
RUN_AFTER_START_S = 20  # a plan Booked this long past its start whose task does not run is stuck
# A booking shorter than this may end before its pod can start on a busy test cluster (1 s
# bookings are among the extremes): stopped at its end without running is then an answer.
SHORT_BOOKING_S = 10
GONE_S = 45          # for a deleted batch's plans and everything they made to go
SEED = os.environ.get("EXECPLANNER_MALFORMED_SEED")

TERMINAL = {"Completed", "Failed", "Rejected", "Expired", "Cancelled"}
UNKNOWN_FIELD = "bogusField"


# ---------------------------------------------------------------------------------------
# Reading the schema

Path_ = tuple  # of str (a property or a map key) and int (an array index)


def show(path: Path_) -> str:
    """("resources", "cores", "min") -> "spec.resources.cores.min"; ints are indexes."""
    return "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def rules(schema: dict) -> list[str]:
    return [r["rule"] for r in schema.get("x-kubernetes-validations") or []]


def kind(schema: dict) -> str:
    """What a field is, as the schema says: its type, or what its CEL rules make of a string."""
    text = " ".join(rules(schema)) if schema_type(schema) in ("string", "int-or-string", "boolean") else ""
    if "isQuantity" in text:
        return "quantity"
    if "P([0-9]{1,9}W)" in text:
        return "interval" if ")/(" in text else "duration"
    if "https?://" in text:
        return "url"
    if text.strip() == "!self":
        return "false-only"
    if schema.get("format") == "date-time":
        return "date-time"
    if "enum" in schema:
        return "enum"
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return "free"
    if schema.get("type") == "object" and "additionalProperties" in schema:
        return "map"
    return schema.get("type") or "any"


def quantity_bounds(schema: dict) -> tuple[str, str]:
    """The quantities a field's rules compare it with: (lowest, highest) allowed."""
    found = {op: q for q, op in re.findall(r"quantity\('([^']+)'\)\)\s*(>=|<=)\s*0", " ".join(rules(schema)))}
    return found[">="], found["<="]


def is_range(schema: dict) -> bool:
    """An object {min, max} with a rule (reported at .max) that min must not exceed max."""
    props = schema.get("properties") or {}
    return {"min", "max"} <= set(props) and any(r.get("fieldPath") == ".max"
                                                 for r in schema.get("x-kubernetes-validations") or [])


def child(schema: dict, seg) -> dict:
    if isinstance(seg, int):
        return schema["items"]
    props = schema.get("properties") or {}
    if seg in props:
        return props[seg]
    return schema.get("additionalProperties") or {}


@dataclass(frozen=True)
class Node:
    path: Path_
    schema: dict = field(hash=False, compare=False)
    required: bool = True


def walk(schema: dict, path: Path_ = (), required: bool = True):
    """Every field of the spec (array items as index 0; a map's values are its own business)."""
    yield Node(path, schema, required)
    if schema.get("type") == "array" and "items" in schema:
        yield from walk(schema["items"], path + (0,), False)
    for name, sub in (schema.get("properties") or {}).items():
        yield from walk(sub, path + (name,), name in (schema.get("required") or []))


NODES = list(walk(SPEC))


def example_from_description(schema: dict) -> str | None:
    """The first quoted example in a field's description ("busybox:1.36" for the image)."""
    m = re.search(r'"([^"\s]+)"', schema.get("description") or "")
    return m.group(1) if m else None


# ---------------------------------------------------------------------------------------
# Valid values, from the schema

def now() -> int:
    return int(time.time())


def instant(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def quantity_text(unit: str, n: int) -> str:
    """n times the field's lowest quantity ("1m", "1Mi"), written with its suffix."""
    return f"{n}{unit.lstrip('0123456789.')}"


def docker_types() -> list[str]:
    return [t for t in SPEC["properties"]["executable"]["properties"]["type"]["enum"] if "docker" in t]


# What no single field's schema says, pinned: the task is a container (the CEL rules of the
# executable tie image/chart/location/mode to its type) with an image the operator's allowlist
# takes (the description's example), whose pod completes soon on the fake nodes; a toleration
# as the Pod API takes one (operator Exists has no value; tolerationSeconds needs NoExecute).
def _executable(draw) -> dict:
    exe = SPEC["properties"]["executable"]["properties"]
    return {"type": draw(st.sampled_from(docker_types())), "image": example_from_description(exe["image"]),
            "podAnnotations": {COMPLETE: "2s"}}


def _toleration(i: int = 0) -> dict:
    return {"key": f"execplanner.io/t{i}", "operator": "Exists", "effect": "NoSchedule"}


PINNED = {
    ("executable",): _executable,
    ("tolerations", 0): lambda draw: _toleration(),
}
# The spec's own rule makes resources required for a container (reported at spec.resources).
BASE_REQUIRED = {("resources",)}
# Optional fields a base plan may have (the others are left to their defaults: sessions 1,
# privileged, cancel and suspend false, no destruction, no placement constraints).
BASE_OPTIONAL = {("resources", "gpus"), ("schedule", "start"), ("schedule", "duration", "max"),
                 ("resources", "cores", "max"), ("resources", "memory", "max"), ("offers",), ("acceptPolicy",),
                 ("executable", "command"), ("executable", "args"), ("executable", "env")}


def leaf(draw, schema: dict, path: Path_, n: int | None = None) -> Any:
    """A valid value of one scalar field; `n` (1, 2, ...) orders values of a range's ends."""
    k = kind(schema)
    if k == "quantity":
        low, _ = quantity_bounds(schema)
        n = n or draw(st.integers(1, 2048))
        amount = parse_quantity(low) * n
        if amount == amount.to_integral_value() and draw(st.booleans()):
            return int(amount)
        return quantity_text(low, n)
    if k == "duration":
        n = n or draw(st.integers(1, 30))
        return draw(st.sampled_from([f"{n}s", f"PT{n}S"]))
    if k == "interval":
        start = now() + draw(st.integers(0, 120))
        length = draw(st.integers(60, 600))
        return draw(st.sampled_from([f"{instant(start)}/PT{length}S", f"{instant(start)}/{instant(start + length)}"]))
    if k == "url":
        return "https://example.org/notebooks/tutorial.ipynb"
    if k == "false-only":
        return False
    if k == "date-time":
        return instant(now() + 86400)
    if k == "enum":
        return draw(st.sampled_from(schema["enum"]))
    if k == "integer":
        low = schema.get("minimum", 0)
        if n is not None:
            return low + n - 1
        return draw(st.integers(low, min(schema.get("maximum", low + 2), low + 2)))
    if k == "boolean":
        return False
    if k == "string":
        example = example_from_description(schema)
        if example and len(example) <= schema.get("maxLength", 1 << 30):
            return example
        return draw(st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True))
    if k in ("map", "free"):
        return {}
    raise AssertionError(f"no valid value for {show(path)} ({k})")


def valid(draw, schema: dict, path: Path_, optional: set | None = None) -> Any:
    """A value of `schema` the schema allows (with PINNED where it cannot say). Objects get their
    required properties, and those optional ones in `optional` at random."""
    if path in PINNED:
        return PINNED[path](draw)
    t = schema.get("type")
    if t == "object" and "properties" in schema:
        props, required = schema["properties"], set(schema.get("required") or [])
        out = {}
        if is_range(schema):  # min <= max: n units of the field's lowest value each
            k = kind(props["min"])
            lo = draw(st.sampled_from([1, 2, 100, 250, 500, 1000, 2000]) if k == "quantity"
                      else st.integers(1, 30) if k == "duration" else st.integers(1, 2))
            out["min"] = leaf(draw, props["min"], path + ("min",), lo)
            if path + ("max",) in (optional or ()) and draw(st.booleans()):
                hi = lo * draw(st.integers(1, 4)) if k == "quantity" else lo + draw(st.integers(0, 1))
                out["max"] = leaf(draw, props["max"], path + ("max",), hi)
            return out
        for name, sub in props.items():
            if name in required or path + (name,) in BASE_REQUIRED \
                    or (path + (name,) in (optional or ()) and draw(st.booleans())):
                out[name] = valid(draw, sub, path + (name,), optional)
        return out
    if t == "array":
        count = draw(st.integers(0, min(2, schema.get("maxItems", 2))))
        return [item(draw, schema["items"], path + (0,), i) for i in range(count)]
    return leaf(draw, schema, path)


def item(draw, schema: dict, path: Path_, i: int) -> Any:
    """The i-th of distinct valid items of an array (unique keys for a list-map)."""
    if path in PINNED:
        return _toleration(i) if path == ("tolerations", 0) else PINNED[path](draw)
    k = kind(schema)
    if k == "interval":
        start = now() + 30 + 60 * i
        return f"{instant(start)}/PT60S"
    if schema.get("type") == "object":
        return {name: (f"V{i}" if name == "name" else str(i)) for name in schema.get("properties") or {}
                if name in (schema.get("required") or []) or schema["properties"][name].get("type") == "string"}
    if k == "string":
        return f"{path[-2] if len(path) > 1 else 'item'}-{i}"
    return leaf(draw, schema, path)


# ---------------------------------------------------------------------------------------
# Mutations, from the schema

MALFORMED, EXTREME = "malformed", "extreme"  # the schema forbids it / the schema allows it
DELETE = object()


@dataclass
class Mutation:
    field: str                       # the field the API server should name ("spec.resources.cores.min")
    label: str                       # what was done
    tag: str                         # MALFORMED or EXTREME
    changes: list[tuple[Path_, Any]]  # (path, value or DELETE), applied in order


WRONG_TYPES = {
    "string": [12345, True, ["x"], {"a": "b"}],
    "integer": ["7", 1.5, True, [1], {"a": 1}],
    "boolean": ["true", 1, [True], {}],
    "array": ["x", 3, {"a": 1}],
    "object": ["x", 3, ["x"]],
    "int-or-string": [True, 1.5, [1], {"a": "1"}],
}
ODD_STRINGS = ["with space", "ünïcødé ☃ 😀", "$(touch /tmp/pwned); `id`", "../../../etc/passwd", "-rf",
               "line\nbreak\ttab", "nul\u0000byte", "x" * 65536]
ODD_KEYS = ["bad key!", "", "k" * 300, "UPPER/lower/two-slashes", "-leading", "ünïcødé"]
BAD_DURATIONS = ["2 hours", "P1M", "P1Y", "PT", "P", "0s", "PT0S", "10", "-5m", "1h30", "1.5h", "P1234567890D",
                 "pt1h", "", "5 min", "1H", "P1DT"]
EXTREME_DURATIONS = ["P999999999W", "999999999d", "999999999s", "P36500D", "876000h", "1s", "PT1S", "P1W",
                     "P1DT1H1M1S", "999999999d999999999h999999999m999999999s", "P5218W"]
BAD_QUANTITIES = ["two", "4 GB", "1.5.5", "", " ", "0x10", "NaN", "Infinity", "-1", "0", 0, -2, "1e400", "1" * 65,
                  "1Zi", "--1"]
BAD_URLS = ["ftp://example.org/x.ipynb", "not a url", "https://a b", "", "javascript:alert(1)"]


def _interval_cases() -> tuple[list[str], list[str]]:
    t = now() + 60
    s, e = instant(t), instant(t + 3600)
    naive = s[:-1]
    bad = ["tomorrow", f"{naive}/PT1H", f"{s}/2h", f"{e}/{s}", f"{s}/PT0S", "2026-13-01T00:00:00Z/PT1H", "",
           f"{s}/", "/PT1H", f"{s}/{e}/{e}", f"{s}/P1M", f"{s}/{s}", f"{s}/P", "2026-11-24T24:00:00Z/PT1H",
           f"{s} / PT1H"]
    extreme = ["9999-12-31T23:59:59Z/PT1S", "9999-12-31T00:00:00Z/9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z/PT1H",
               "2000-01-01T00:00:00Z/2000-01-02T00:00:00Z", f"{s}/P36500D", f"{s}/P999999999W", f"{s}/P999999999D",
               "2026-02-30T00:00:00Z/PT1H", "2026-02-30T00:00:00Z/2026-03-01T00:00:00Z",
               f"{naive}.123456789+23:59/PT1H", "0001-01-01T00:00:00+23:59/PT1S", f"{s}/PT1S"]
    return bad, extreme


def schema_type(schema: dict) -> str:
    if "anyOf" in schema or schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    return schema.get("type") or "object"


def mutations(node: Node) -> list[Mutation]:
    """Every mutation the schema suggests for one field."""
    s, path, name = node.schema, node.path, show(node.path)
    out: list[Mutation] = []

    def add(label: str, tag: str, value: Any, at: Path_ = path, fld: str = name) -> None:
        out.append(Mutation(fld, label, tag, [(at, value)]))

    k, t = kind(s), schema_type(s)
    for v in WRONG_TYPES.get(t, []):
        add(f"wrong type {type(v).__name__}", MALFORMED, v)
    if path:
        add("left out", MALFORMED if node.required else EXTREME, DELETE)
    if t == "object" and k not in ("free", "map"):
        add("unknown field", MALFORMED, 1, path + (UNKNOWN_FIELD,), show(path + (UNKNOWN_FIELD,)))
        add("empty object", MALFORMED if s.get("required") else EXTREME, {})
    if is_range(s):
        lo_s = s["properties"]["min"]
        if kind(lo_s) == "quantity":
            low, _ = quantity_bounds(lo_s)
            lo, hi = quantity_text(low, 1), quantity_text(low, 2)
        elif kind(lo_s) == "duration":
            lo, hi = "1m", "61s"
        else:
            lo, hi = lo_s.get("minimum", 0), lo_s.get("minimum", 0) + 1
        out.append(Mutation(name, "min above max", MALFORMED, [(path + ("min",), hi), (path + ("max",), lo)]))
        out.append(Mutation(name, "min equals max", EXTREME, [(path + ("min",), hi), (path + ("max",), hi)]))
    if k == "enum":
        for v in s["enum"]:
            add(f"enum value {v}", EXTREME, v)
        v = s["enum"][0]
        for bad in {f"{v}-not", v.upper() if v.upper() != v else v.lower(), "", f" {v}"} - set(s["enum"]):
            add("outside the enum", MALFORMED, bad)
    if k == "integer" or t == "integer":
        lo, hi = s.get("minimum"), s.get("maximum")
        for v in (lo, hi):
            if v is not None:
                add("at a bound", EXTREME, v)
        if lo is not None:
            add("below minimum", MALFORMED, lo - 1)
            add("far below minimum", MALFORMED, -(2 ** 31))
        if hi is not None:
            add("above maximum", MALFORMED, hi + 1)
            add("far above maximum", MALFORMED, 2 ** 53)
        if lo is None and hi is None:
            for v in (0, -1, 2 ** 63 - 1, -(2 ** 63)):
                add("extreme integer", EXTREME, v)
        add("beyond int64", MALFORMED, 2 ** 64)
    if k == "boolean":
        add("true", EXTREME, True)
    if k == "false-only":
        add("true (refused by its rule)", MALFORMED, True)
    if k == "quantity":
        low, high = quantity_bounds(s)
        lo_q, hi_q = parse_quantity(low), parse_quantity(high)
        for v in BAD_QUANTITIES:
            add("not a quantity in range", MALFORMED, v)
        below, above = lo_q / 2, hi_q * 2
        for v in (f"{below.normalize():f}", f"{above.normalize():f}", int(hi_q) + 1):
            add("out of the rule's bounds", MALFORMED, v)
        if below == below.to_integral_value():
            add("out of the rule's bounds", MALFORMED, int(below))
        for v in (low, high, int(hi_q), f"{Decimal(hi_q):E}".replace("E+", "e")):
            add("at the rule's bound", EXTREME, v)
    if k == "duration":
        for v in BAD_DURATIONS:
            add("not a duration", MALFORMED, v)
        for v in EXTREME_DURATIONS:
            add("extreme duration", EXTREME, v)
    if k == "interval":  # (made when the plan is: relative to the time)
        bad, extreme = _interval_cases()
        for i in range(len(bad)):
            add("not an interval", MALFORMED, lambda i=i: _interval_cases()[0][i])
        for i in range(len(extreme)):
            add("extreme interval", EXTREME, lambda i=i: _interval_cases()[1][i])
    if k == "url":
        for v in BAD_URLS:
            add("not an http(s) URL", MALFORMED, v)
    if k == "date-time":
        for v in ("yesterday", "2026-13-01T00:00:00Z", "", "24/11/2026"):
            add("not a date-time", MALFORMED, v)
        for v in ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-11-24T15:00:00.123456789+23:59"):
            add("extreme date-time", EXTREME, v)
    if k == "string":
        lo, hi = s.get("minLength"), s.get("maxLength")
        if hi is not None:
            add("longer than maxLength", MALFORMED, "x" * (hi + 1))
            add("exactly maxLength", EXTREME, "x" * hi)
        add("empty", MALFORMED if lo else EXTREME, "")
        for v in ODD_STRINGS:
            if hi is None or len(v) <= hi:
                add("odd string", EXTREME, v)
    if k == "map":
        for key in ODD_KEYS:
            add("odd key", EXTREME, {key: "v"})
        add("long value", EXTREME, {"k": "v" * 65536})
        add("empty value", EXTREME, {"k": ""})
        add("many entries", EXTREME, {f"k{i}": "v" for i in range(300)})
        add("value of wrong type", MALFORMED, {"k": 5})
        add("value of wrong type", MALFORMED, {"k": ["v"]})
    if k == "free":
        add("deep values", EXTREME, {"a": [{"b": {"c": [1, 2.5, None, True, "x" * 1000]}}] * 50})
    if t == "array":
        top = s.get("maxItems")
        if top is not None:
            out.append(Mutation(name, "more than maxItems", MALFORMED, [(path, ("items", top + 1))]))
            out.append(Mutation(name, "exactly maxItems", EXTREME, [(path, ("items", top))]))
        add("empty list", EXTREME, [])
        if s.get("x-kubernetes-list-type") == "map":
            out.append(Mutation(name, "duplicate map key", MALFORMED, [(path, ("duplicate", 2))]))
    return out


CATALOG = [m for node in NODES for m in mutations(node)]
# Every value the schema allows at its edges, or that only a rule of the field keeps in range:
# what gets past the API server to the operator. Each is applied once (the sweep); the random
# batches draw from the whole catalog, half malformed, half extreme.
SWEEP_LABELS = {"at the rule's bound", "extreme duration", "extreme interval", "extreme date-time", "exactly maxItems",
                "min equals max", "at a bound", "extreme integer", "true", "odd key", "long value", "many entries",
                "deep values", "exactly maxLength", "odd string", "empty", "empty value"}
SWEEP = [m for m in CATALOG if m.tag == EXTREME and (m.label in SWEEP_LABELS or m.label.startswith("enum value"))]


# ---------------------------------------------------------------------------------------
# A generated plan

@dataclass(repr=False)
class Generated:
    name: str
    body: dict
    mutation: Mutation

    def __repr__(self) -> str:  # (what hypothesis prints of a failing batch)
        return f"<{self.name}: {self.mutation.label} at {self.mutation.field}>"

    def describe(self) -> str:
        spec = json.dumps(self.body["spec"], ensure_ascii=False)
        if len(spec) > 600:
            spec = spec[:600] + f"... ({len(spec)} characters)"
        return f"{self.name}: {self.mutation.tag} {self.mutation.label} at {self.mutation.field}; spec {spec}"


def _place(draw, spec: dict, path: Path_, value: Any) -> None:
    """Set (or delete) `path` in spec, making valid parents where they are missing."""
    node, schema = spec, SPEC
    for i, seg in enumerate(path[:-1]):
        sub = child(schema, seg)
        if isinstance(seg, int):
            while len(node) <= seg:
                node.append(item(draw, sub, path[:i + 1], len(node)))
        elif not isinstance(node.get(seg), (dict, list)):
            node[seg] = valid(draw, sub, path[:i + 1])
        node, schema = node[seg], sub
    last = path[-1]
    target_schema = child(schema, last)
    if isinstance(value, tuple) and value and value[0] in ("items", "duplicate"):  # array sizes
        count = value[1]
        items = [item(draw, target_schema["items"], path + (0,), i) for i in range(count)]
        if value[0] == "duplicate":
            items = [items[0], copy.deepcopy(items[0])]
        value = items
    if isinstance(last, int):
        while len(node) <= last:
            node.append(item(draw, target_schema, path, len(node)))
    if value is DELETE:
        if isinstance(node, dict):
            node.pop(last, None)
        elif last < len(node):
            node.pop(last)
    else:
        node[last] = value


@st.composite
def generated_plan(draw, batch: int, index: int, mutation: Mutation | None = None) -> Generated:
    spec = valid(draw, SPEC, (), BASE_OPTIONAL)
    if mutation is None:
        mutation = draw(st.sampled_from([m for m in CATALOG if m.tag == MALFORMED])
                        | st.sampled_from([m for m in CATALOG if m.tag == EXTREME]))
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ExecutionPlan",
            "metadata": {"name": f"m{batch}-{index}"}, "spec": spec}
    for path, value in mutation.changes:
        value = value() if callable(value) else value
        if path == ():
            if value is DELETE:
                body.pop("spec")
            else:
                body["spec"] = copy.deepcopy(value)
        else:
            _place(draw, body["spec"], path, value if value is DELETE else copy.deepcopy(value))
    return Generated(body["metadata"]["name"], body, mutation)


@st.composite
def batch_of_plans(draw, counter: list[int], mutations: list[Mutation] | None = None) -> list[Generated]:
    """PER_BATCH plans with distinct mutations drawn from the catalog, or one plan per given mutation."""
    counter[0] += 1
    n = counter[0]
    if mutations is not None:
        return [draw(generated_plan(n, i, m)) for i, m in enumerate(mutations)]
    mutations_seen: set[int] = set()
    out = []
    while len(out) < PER_BATCH:  # distinct mutations in a batch (the first example is otherwise all alike)
        g = draw(generated_plan(n, len(out)))
        if id(g.mutation) in mutations_seen:  # (the catalog's entries themselves)
            continue
        mutations_seen.add(id(g.mutation))
        out.append(g)
    return out


# ---------------------------------------------------------------------------------------
# The oracle

def names_field(message: str, fld: str, prefix: str = "spec.") -> bool:
    """Whether the message names the mutated field, or its parent (where an object's rule
    reports it there, e.g. spec.resources.cores.max for a min above max of
    spec.resources.cores). With prefix "", as the operator's model checks write a field
    (pydantic's "destruction" for spec.destruction)."""
    parts = re.findall(r"\.[^.\[]+|\[\d+\]", fld[len("spec"):])
    names = [fld] + (["spec" + "".join(parts[:-1])] if len(parts) > 1 else [])  # (spec itself names nothing)
    for name in names:
        name = prefix + name[len("spec."):] if name != "spec" else name
        if re.search(r"(^|[\s\"'(\[])" + re.escape(name) + r"($|[\s.\[:\"')])", message, re.M):
            return True
    return False


def phase_of(plan: dict | None) -> str | None:
    return ((plan or {}).get("status") or {}).get("phase")


def epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def destruction_passed(spec: dict) -> bool:
    when = spec.get("destruction")
    try:
        return bool(when) and parse_instant(when, "spec.destruction") <= time.time()
    except UnitError:
        return False


class Run:
    """The test's namespace, clients and what happened to every plan."""

    def __init__(self, api: client.ApiClient, namespace: str, operator: OperatorProcess, since: int):
        self.ns, self.operator, self.since = namespace, operator, since
        self.core, self.batch = client.CoreV1Api(api), client.BatchV1Api(api)
        self.xp = client.CustomObjectsApi(api)
        self.outcomes: Counter = Counter()
        self.plans = self.batches = 0
        self.uids: dict[str, str] = {}  # uid -> plan name, of every plan accepted

    # -- the API ------------------------------------------------------------------------

    def create(self, body: dict) -> dict:
        return self.xp.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS, body, field_validation="Strict")

    def listed(self) -> dict[str, dict]:
        return {p["metadata"]["name"]: p
                for p in self.xp.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS)["items"]}

    def left_behind(self, uids: set[str]) -> list[str]:
        """What still carries one of these plans' UIDs in the namespace."""
        sel = L_UID
        found = []
        listings = {
            "pod": self.core.list_namespaced_pod(self.ns, label_selector=sel).items,
            "service": self.core.list_namespaced_service(self.ns, label_selector=sel).items,
            "secret": self.core.list_namespaced_secret(self.ns, label_selector=sel).items,
            "configmap": self.core.list_namespaced_config_map(self.ns, label_selector=sel).items,
            "job": self.batch.list_namespaced_job(self.ns, label_selector=sel).items,
        }
        for what, items in listings.items():
            found += [f"{what}/{o.metadata.name}" for o in items if o.metadata.labels.get(L_UID) in uids]
        runs = self.xp.list_namespaced_custom_object(GROUP, VERSION, self.ns, "taskruns")["items"]
        found += [f"taskrun/{r['metadata']['name']}" for r in runs
                  if (r["metadata"].get("labels") or {}).get(L_UID) in uids
                  or any(o.get("uid") in uids for o in r["metadata"].get("ownerReferences") or [])]
        return found

    # -- the operator -------------------------------------------------------------------

    def log(self) -> str:
        with open(self.operator.log_path, "rb") as f:
            f.seek(self.since)
            return f.read().decode(errors="replace")

    def operator_problems(self) -> list[str]:
        """The operator died, or logged a traceback, an error or a failed step of our plans."""
        problems = []
        if not self.operator.alive():
            problems.append(f"the operator exited ({self.operator.proc.returncode})")
        elif not self.operator.healthy():
            problems.append("the operator's liveness endpoint does not answer")
        lines = self.log().splitlines()
        for i, line in enumerate(lines):
            step = re.search(r"step of (\S+) failed", line)
            if "Traceback" in line or " ERROR " in line or (step and step.group(1) in self.uids):
                who = self.uids.get(step.group(1)) if step else None
                problems.append(f"operator log: {line.strip()[:400]}" + (f" (plan {who})" if who else "")
                                + ("\n    " + "\n    ".join(lines[i + 1:i + 12]) if "Traceback" in line else ""))
        return problems

    def diagnostics(self) -> str:
        return self.operator.tail(60, since=self.since)

    # -- one batch ----------------------------------------------------------------------

    def check_batch(self, batch: list[Generated]) -> None:
        self.batches += 1
        failures: list[str] = []
        accepted: dict[str, Generated] = {}
        for g in batch:
            self.plans += 1
            try:
                created = self.create(g.body)
            except client.ApiException as e:
                message = _message(e)
                if e.status not in (400, 422):
                    failures.append(f"{g.describe()}\n  -> the API server answered {e.status}: {message}")
                elif not names_field(message, g.mutation.field):
                    failures.append(f"{g.describe()}\n  -> refused without naming {g.mutation.field}: {message}")
                self.outcomes[f"refused ({g.mutation.tag})"] += 1
                continue
            self.uids[created["metadata"]["uid"]] = g.name
            accepted[g.name] = g

        answered = self._wait_answered(accepted, failures)
        for name, plan in answered.items():
            g = accepted[name]
            self.outcomes[f"accepted, {_outcome(plan)} ({g.mutation.tag})"] += 1
            problem = _judge(g, plan) or self._ran_if_timed_out(plan)
            if problem:
                failures.append(f"{g.describe()}\n  -> {problem}\n  status: "
                                + json.dumps({k: v for k, v in ((plan or {}).get("status") or {}).items()
                                              if k != "kopf"})[:1500])
        failures += self.operator_problems()
        uids = {uid for uid, n in self.uids.items() if n in accepted}
        failures += self._delete_and_check(uids)
        assert not failures, ("\n\n".join(failures) + "\n\n" + self.diagnostics())

    def _ran_if_timed_out(self, plan: dict | None) -> str | None:
        """A plan stopped at its booking's end must have run (its TaskRun EXECUTING at some
        point, with a startTime): not a task that never started, passed off as timed out."""
        status = (plan or {}).get("status") or {}
        if status.get("phase") != "Failed" or "time limit" not in (status.get("message") or ""):
            return None
        booked = status.get("booking") or {}
        if booked and epoch(booked["end"]) - epoch(booked["start"]) < SHORT_BOOKING_S:
            return None
        try:
            run = self.xp.get_namespaced_custom_object(GROUP, VERSION, self.ns, "taskruns", status.get("taskRun") or "")
        except client.ApiException as e:
            return f"stopped at its time limit, and its TaskRun cannot be read ({e.status})"
        if not (run.get("status") or {}).get("startTime"):
            return f"stopped at its time limit without ever running: TaskRun {json.dumps(run.get('status'))}"
        return None

    def _wait_answered(self, accepted: dict[str, Generated], failures: list[str]) -> dict[str, dict | None]:
        """Until every accepted plan is answered (see _settled); the plans as last seen."""
        last: dict[str, dict | None] = {}
        first_booked_past_start: dict[str, float] = {}

        def check():
            plans = self.listed()
            pending = []
            for name, g in accepted.items():
                plan = plans.get(name)
                last[name] = plan
                if plan is None:
                    if not destruction_passed(g.body["spec"]):
                        raise AssertionError(f"{g.describe()}\n  -> the plan vanished (no destruction time passed)")
                    continue
                state = _settled(plan)
                if state == "running-due":
                    first = first_booked_past_start.setdefault(name, time.monotonic())
                    if time.monotonic() - first > RUN_AFTER_START_S:
                        raise AssertionError(f"{g.describe()}\n  -> Booked {RUN_AFTER_START_S}s past its start and "
                                             f"its task does not run: {json.dumps(plan.get('status'))[:1500]}")
                if state != "settled":
                    pending.append(name)
            return not pending or None

        try:
            wait_until(check, timeout=SETTLE_S, interval=0.5, what="every accepted plan to be answered")
        except AssertionError as e:
            unanswered = [accepted[n].describe() + f"\n  -> status {json.dumps((last.get(n) or {}).get('status'))}"
                          for n in accepted if last.get(n) is not None and _settled(last[n]) != "settled"]
            failures.append(f"{e}\n" + "\n".join(unanswered))
        return last

    def _delete_and_check(self, uids: set[str]) -> list[str]:
        for name in self.listed():
            try:
                self.xp.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLANS, name,
                                                        propagation_policy="Background")
            except client.ApiException as e:
                if e.status != 404:
                    raise
        problems = []
        try:
            wait_until(lambda: not self.listed(), timeout=GONE_S, interval=0.5, what="the batch's plans to be deleted")
            wait_until(lambda: not self.left_behind(uids), timeout=GONE_S, interval=0.5,
                       what="nothing with the deleted plans' UIDs left")
        except AssertionError as e:
            problems.append(f"{e}: {sorted(self.listed())} {self.left_behind(uids)[:20]}")
        return problems


def _message(e: client.ApiException) -> str:
    try:
        return json.loads(e.body)["message"]
    except (TypeError, ValueError, KeyError):
        return str(e.body or e.reason)


def _outcome(plan: dict | None) -> str:
    """The phase, and for Rejected and Failed plans why (for the summary)."""
    if plan is None:
        return "deleted at its destruction time"
    status = plan.get("status") or {}
    phase = status.get("phase")
    if phase == "Rejected":
        cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Booked"), None) or {}
        return f"Rejected {cond.get('reason')}"
    if phase == "Failed":
        return f"Failed: {(status.get('message') or '').split(':')[0][:60]}"
    return str(phase)


def _settled(plan: dict) -> str:
    """"settled" when the operator has answered the plan; "running-due" when it is Booked and
    its start has passed (its task must run soon); else "waiting"."""
    status = plan.get("status") or {}
    phase = status.get("phase")
    if phase in TERMINAL or phase in ("Running", "Offered"):
        return "settled"
    if phase == "Pending":
        return "settled" if (plan.get("spec") or {}).get("suspend") and status.get("message") else "waiting"
    if phase in ("Booked", "Starting"):
        start = (status.get("booking") or {}).get("start")
        return "settled" if start and epoch(start) > time.time() else "running-due"
    return "waiting"


def _judge(g: Generated, plan: dict | None) -> str | None:
    """What is wrong with how an accepted plan was answered (None: nothing)."""
    if plan is None:
        return None  # deleted at its destruction time (checked while waiting)
    status = plan.get("status") or {}
    phase, message = status.get("phase"), status.get("message") or ""
    if g.mutation.tag == MALFORMED and phase != "Rejected":
        return f"the schema forbids this, the API server accepted it and the plan is {phase}, not Rejected"
    if phase in ("Rejected", "Failed") and not message.strip():
        return f"{phase} without a message"
    if phase == "Rejected":
        cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Booked"), None)
        if not cond or cond.get("status") != "False" or not cond.get("reason") or not cond.get("message"):
            return f"Rejected without a Booked=False condition giving a reason: {cond}"
        if cond["reason"] == "InvalidSpec" and not names_field(message, g.mutation.field) \
                and not names_field(message, g.mutation.field, prefix=""):
            return f"rejected as an invalid spec without naming {g.mutation.field}: {message}"
    if phase == "Offered" and not status.get("offers"):
        return "Offered without offers"
    return None


# ---------------------------------------------------------------------------------------
# The test

# One example is one batch: a round trip through the cluster. Nothing to shrink (a failure
# names its plan and mutation); the health checks are about costs that are the point here.
SETTINGS = dict(deadline=None, database=None, phases=[Phase.generate], print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example, HealthCheck.filter_too_much])


def test_generated_malformed_plans_are_refused_or_answered(api, namespace, operator, operator_log, kubeconfig):
    run = Run(api, namespace, operator, since=operator_log)
    counter = [0]
    print(f"\nmalformed plans: {'seed ' + SEED if SEED else 'derandomized'}; {len(CATALOG)} mutations of "
          f"{len(NODES)} schema fields; a sweep of {len(SWEEP)} extremes, then {BATCHES} batches of {PER_BATCH}")
    started = time.monotonic()

    # The sweep: each extreme once (on bases hypothesis draws), PER_BATCH at a time.
    for i in range(0, len(SWEEP), PER_BATCH):
        sweep = given(batch_of_plans(counter, SWEEP[i:i + PER_BATCH]))(run.check_batch)
        settings(max_examples=1, derandomize=True, **SETTINGS)(sweep)()
    sweep_batches = run.batches

    # Then random batches from the whole catalog.
    one_batch = given(batch_of_plans(counter))(run.check_batch)
    one_batch = settings(max_examples=BATCHES, derandomize=SEED is None, **SETTINGS)(one_batch)
    if SEED is not None:
        one_batch = seed(int(SEED))(one_batch)
    one_batch()
    print(f"malformed plans: {run.plans} plans in {run.batches} batches, {time.monotonic() - started:.0f}s:")
    for outcome, count in sorted(run.outcomes.items()):
        print(f"  {count:3d} {outcome}")
    assert run.batches == sweep_batches + BATCHES and run.plans == len(SWEEP) + BATCHES * PER_BATCH

    assert_operator_sound(run, api)


def assert_operator_sound(run: Run, api: client.ApiClient) -> None:
    """Nothing leaked into the operator's calendar (every node's whole CPU can be booked now),
    an ordinary small plan is still booked, runs and completes, and the operator logged no
    traceback, error or failed step of the test's plans."""
    probes = {}
    for node in client.CoreV1Api(api).list_node().items:
        name = f"probe-{node.metadata.name}"[:63]
        body = plan_body(name, cores=node.status.allocatable["cpu"], memory="1Gi", duration="10s",
                         node=node.metadata.name)
        probes[name] = run.create(body)
    booked_by = time.time() + 15

    def all_booked():
        plans = run.listed()
        for name in probes:
            phase = phase_of(plans.get(name))
            if phase in TERMINAL:
                raise AssertionError(f"{name} is {phase}: {plans[name]['status'].get('message')} (capacity leaked?)")
        return plans if all((plans[n].get("status") or {}).get("booking") for n in probes) else None

    plans = wait_until(all_booked, timeout=30, what="a whole-node plan on every node to be booked")
    for name in probes:
        start = epoch(plans[name]["status"]["booking"]["start"])
        assert start <= booked_by, f"{name} booked from {plans[name]['status']['booking']['start']}, not now: " \
                                   f"some capacity is still held\n{run.diagnostics()}"
    assert not run._delete_and_check({p["metadata"]["uid"] for p in probes.values()})

    run.create(plan_body("ordinary", cores=1, memory="1Gi", duration="20s", annotations={COMPLETE: "2s"}))
    plan = wait_until(lambda: (lambda p: p if phase_of(p) in TERMINAL else None)(run.listed().get("ordinary")),
                      timeout=45, what="the ordinary plan to finish")
    assert phase_of(plan) == "Completed", f"{json.dumps(plan.get('status'))}\n{run.diagnostics()}"
    assert not run._delete_and_check({plan["metadata"]["uid"]})
    problems = run.operator_problems()
    assert not problems, "\n".join(problems) + "\n" + run.diagnostics()


# What the generator found, each once with its exact answer: (spec changes, phase, condition
# reason or None, text the message must contain).
FOUND = {
    # isodate's timedelta overflowed: no status, the step failing forever.
    "duration-999999999-weeks": ({"schedule": {"duration": {"min": "P999999999W"}}}, "Rejected", "InvalidSpec",
                                 "spec.schedule.duration.min"),
    # The booking's end could not be written (year 2739933): no status, and the booking left in
    # the operator's calendar (the next try: "exists with different content").
    "duration-999999999-days": ({"schedule": {"duration": {"min": "1s", "max": "999999999d"}}}, "Rejected",
                                "InvalidSpec", "spec.schedule.duration.max"),
    # 100 years: booked, but no pod can have an activeDeadlineSeconds past 2^31 - 1 s; the
    # refusal passed for a created pod, and the plan stayed Booked, its task never run.
    "duration-100-years": ({"schedule": {"duration": {"min": "P36500D"}}}, "Rejected", "InvalidSpec",
                           "spec.schedule.duration.min"),
    # A window in the year 9999: its booking would end in the year 10000 (no status).
    "window-in-9999": ({"schedule": {"duration": {"min": "30s"}, "start": ["9999-12-31T23:59:59Z/PT1S"]}},
                       "Rejected", "InvalidSpec", "spec.schedule.start[0]"),
    # What the CRD takes and the Pod API does not: the refusal passed for a created pod (the
    # plan stayed Booked with no pod until its booking's end); now the plan fails, saying why.
    "pod-label-key": ({"executable": {"podLabels": {"bad key!": "v"}}}, "Failed", None, "metadata.labels"),
    "toleration-seconds-not-noexecute": (
        {"tolerations": [{"key": "a", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5}]},
        "Failed", None, "spec.tolerations[0].effect"),
    # The API server lets a list through a string field with format date-time (its own
    # validation, Kubernetes 1.34): the operator rejects it.
    "destruction-a-list": ({"destruction": ["x"]}, "Rejected", "InvalidSpec", "destruction"),
}


def _merged(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) and value else value
    return out


def test_what_the_generator_found_is_answered(api, namespace, operator, operator_log, kubeconfig):
    run = Run(api, namespace, operator, since=operator_log)
    base = plan_body("x", cores=1, memory="1Gi", duration="30s", annotations={COMPLETE: "2s"})
    for name, (changes, *_) in FOUND.items():
        body = copy.deepcopy(base)
        body["metadata"]["name"], body["spec"] = name, _merged(base["spec"], changes)
        run.uids[run.create(body)["metadata"]["uid"]] = name

    def answered():
        plans = run.listed()
        return plans if all(phase_of(plans.get(n)) in TERMINAL for n in FOUND) else None

    plans = wait_until(answered, timeout=45, what="every plan to end")
    for name, (_, phase, reason, text) in FOUND.items():
        status = plans[name]["status"]
        cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Booked"), {})
        assert status["phase"] == phase and (reason is None or cond.get("reason") == reason) \
            and text in status.get("message", ""), f"{name}: {json.dumps(status)[:1500]}\n{run.diagnostics()}"
        if phase == "Failed":
            run_status = run.xp.get_namespaced_custom_object(GROUP, VERSION, run.ns, "taskruns", name)["status"]
            assert run_status["phase"] == "ERROR" and run_status["reason"] == "TaskRefused", run_status
    assert not run._delete_and_check(set(run.uids))
    assert_operator_sound(run, api)
