"""Pure checks of crds/ and examples/ (no cluster): names, descriptions, printer columns,
rules, and the regular expressions the CEL rules use (RE2, which Python's re agrees with
for the subset used here)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = {d["spec"]["names"]["kind"]: d for d in (yaml.safe_load(p.read_text()) for p in sorted((ROOT / "crds").glob("*.yaml")))}
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

PLAN_PHASES = ["Pending", "Offered", "Booked", "Starting", "Running", "Completed", "Failed", "Rejected", "Expired", "Cancelled"]
UWS_PHASES = ["PENDING", "QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED", "HELD", "SUSPENDED", "UNKNOWN", "ARCHIVED"]


def schema(kind: str) -> dict:
    (version,) = CRDS[kind]["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]


def at(node: dict, path: str) -> dict:
    for key in path.split("."):
        node = node["items"] if key == "[]" else node["properties"][key]
    return node


def walk(node: dict, path: str = ""):
    """Yields (path, schema) for every declared property, array item and map value."""
    for key, child in node.get("properties", {}).items():
        yield f"{path}.{key}", child
        yield from walk(child, f"{path}.{key}")
    for key, label in (("items", "[]"), ("additionalProperties", "{}")):
        if isinstance(node.get(key), dict):
            yield path + label, node[key]
            yield from walk(node[key], path + label)


def rules(node: dict) -> list[dict]:
    return node.get("x-kubernetes-validations", [])


def test_both_kinds_are_defined():
    assert set(CRDS) == {"ExecutionPlan", "TaskRun"}


@pytest.mark.parametrize("kind,plural,short", [("ExecutionPlan", "executionplans", "xp"), ("TaskRun", "taskruns", "tr")])
def test_names(kind: str, plural: str, short: str):
    crd = CRDS[kind]
    assert crd["metadata"]["name"] == f"{plural}.execplanner.io"
    assert crd["spec"]["group"] == "execplanner.io"
    assert crd["spec"]["scope"] == "Namespaced"
    names = crd["spec"]["names"]
    assert names["plural"] == plural and names["shortNames"] == [short] and names["categories"] == ["execplanner"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", ["ExecutionPlan", "TaskRun"])
def test_every_field_has_a_description(kind: str):
    top = schema(kind)
    missing = [path for path, node in walk(top)
               if path != ".metadata" and not node.get("description", "").strip()]
    assert not missing, f"{kind} fields without a description: {missing}"


@pytest.mark.parametrize("kind", ["ExecutionPlan", "TaskRun"])
def test_status_keeps_unknown_fields(kind: str):
    assert schema(kind)["properties"]["status"]["x-kubernetes-preserve-unknown-fields"] is True


@pytest.mark.parametrize("kind", ["ExecutionPlan", "TaskRun"])
def test_every_rule_explains_itself(kind: str):
    for path, node in [("", schema(kind)), *walk(schema(kind))]:
        for rule in rules(node):
            assert rule.get("message") or rule.get("messageExpression"), f"{kind}{path}: {rule['rule']}"


@pytest.mark.parametrize("kind,columns", [
    ("ExecutionPlan", ["Phase", "Start", "End", "Cores", "Memory", "Age"]),
    ("TaskRun", ["Phase", "Plan", "Start", "End", "Age"]),
])
def test_printer_columns(kind: str, columns: list[str]):
    (version,) = CRDS[kind]["spec"]["versions"]
    printed = version["additionalPrinterColumns"]
    assert [c["name"] for c in printed if not c.get("priority")] == columns
    for column in printed:
        path = column["jsonPath"]
        if path.startswith(".metadata."):
            continue
        at(schema(kind), path.lstrip("."))  # KeyError when the column reads an undeclared field


def test_phases():
    assert at(schema("ExecutionPlan"), "status.phase")["enum"] == PLAN_PHASES
    assert at(schema("TaskRun"), "status.phase")["enum"] == UWS_PHASES


def test_spec_defaults_and_requirements():
    spec = at(schema("ExecutionPlan"), "spec")
    assert spec["properties"]["offers"]["default"] == 1
    assert spec["properties"]["acceptPolicy"]["default"] == "First"
    assert spec["properties"]["cancel"]["default"] is False
    # resources: required for containers (a CEL rule), optional caps for a Helm chart
    assert set(spec["required"]) == {"executable", "schedule"}
    assert any("has(self.resources)" in r["rule"] and "helm-chart" in r["rule"] for r in rules(spec))
    assert set(at(spec, "resources")["required"]) == {"cores", "memory"}
    for block in ("cores", "memory", "gpus"):
        assert at(spec, f"resources.{block}")["required"] == ["min"]
    assert at(spec, "schedule.duration")["required"] == ["min"]
    assert at(schema("TaskRun"), "spec")["required"] == ["planRef"]


# --- the regular expressions inside the CEL rules -------------------------------------

def _first_pattern(node: dict) -> re.Pattern:
    match = re.search(r"matches\('(\^[^']*\$)'\)", rules(node)[0]["rule"])
    assert match, rules(node)[0]["rule"]
    return re.compile(match.group(1))


def _cel_matches(pattern: str, text: str) -> bool:
    """CEL's string.matches(): RE2 search (unanchored unless the pattern anchors)."""
    return re.search(pattern, text) is not None


DURATION = at(schema("ExecutionPlan"), "spec.schedule.duration.min")
INTERVAL = at(schema("ExecutionPlan"), "spec.schedule.start.[]")


@pytest.mark.parametrize("text", ["PT2H", "P1DT2H", "PT90M", "PT30S", "P1W", "P2D", "10m", "9h", "60s", "1h30m", "2d", "1d2h3m4s"])
def test_duration_pattern_accepts(text: str):
    assert _first_pattern(DURATION).search(text) and _cel_matches("[0-9]", text) and not text.endswith("T")
    assert _cel_matches(rules(DURATION)[1]["rule"].split("'")[1], text)  # longer than zero


@pytest.mark.parametrize("text", ["2 hours", "P1M", "P1Y", "PT", "P", "P1DT", "1.5h", "h", "", "2H", "pt2h", "1m30h", "1234567890s"])
def test_duration_pattern_refuses(text: str):
    ok = _first_pattern(DURATION).search(text) and _cel_matches("[0-9]", text) and not text.endswith("T")
    assert not ok


@pytest.mark.parametrize("text", ["0s", "PT0S", "P0D", "0h0m"])
def test_zero_durations_are_refused(text: str):
    assert _first_pattern(DURATION).search(text)
    assert not _cel_matches(rules(DURATION)[1]["rule"].split("'")[1], text)


@pytest.mark.parametrize("text", [
    "2026-11-24T15:00:00Z/2026-11-24T17:00:00Z", "2026-11-24T15:00:00Z/PT2H",
    "2026-11-24T15:00:00.250+01:00/P1DT2H", "2026-11-24T15:00:00-05:30/2026-11-24T23:00:00Z",
])
def test_interval_pattern_accepts(text: str):
    assert _first_pattern(INTERVAL).search(text)


@pytest.mark.parametrize("text", [
    "tomorrow", "2026-11-24T15:00:00Z", "2026-11-24T15:00:00/PT2H", "2026-11-24 15:00:00Z/PT2H",
    "2026-11-24T15:00Z/PT2H", "2026-13-24T15:00:00Z/PT2H", "2026-11-24T15:00:00Z/2h",
    "PT2H/2026-11-24T15:00:00Z", "2026-11-24T15:00:00Z/P1M", "2026-11-24T15:00:00Z/PT2H/PT1H",
])
def test_interval_pattern_refuses(text: str):
    assert not _first_pattern(INTERVAL).search(text)


# --- the examples, against the schema (the structural part; CEL is checked in the cluster)

def _check(node: dict, value, path: str, errors: list[str]) -> None:
    if node.get("x-kubernetes-int-or-string"):
        if not isinstance(value, (int, str)) or isinstance(value, bool):
            errors.append(f"{path}: not an integer or string")
        return
    kind = node.get("type")
    expected = {"object": dict, "array": list, "string": str, "integer": int, "boolean": bool}.get(kind)
    if expected and (not isinstance(value, expected) or (kind == "integer" and isinstance(value, bool))):
        errors.append(f"{path}: not of type {kind}")
        return
    if "enum" in node and value not in node["enum"]:
        errors.append(f"{path}: {value!r} not one of {node['enum']}")
    if kind == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        for key in node.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: required")
        for key, child in value.items():
            if key in node.get("properties", {}):
                _check(node["properties"][key], child, f"{path}.{key}", errors)
            elif isinstance(node.get("additionalProperties"), dict):
                _check(node["additionalProperties"], child, f"{path}.{key}", errors)
            else:
                errors.append(f"{path}.{key}: unknown field")
    if kind == "array":
        for i, item in enumerate(value):
            _check(node["items"], item, f"{path}[{i}]", errors)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_matches_the_schema(path: Path):
    doc = yaml.safe_load(path.read_text())
    assert doc["apiVersion"] == "execplanner.io/v1alpha1" and doc["kind"] == "ExecutionPlan"
    assert doc["metadata"]["name"] == path.stem
    errors: list[str] = []
    _check(at(schema("ExecutionPlan"), "spec"), doc["spec"], "spec", errors)
    assert not errors
    for start in doc["spec"]["schedule"].get("start", []):
        assert _first_pattern(INTERVAL).search(start), start
    for bound in doc["spec"]["schedule"]["duration"].values():
        assert _first_pattern(DURATION).search(bound), bound
