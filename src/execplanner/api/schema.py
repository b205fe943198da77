"""From the API's pydantic models to Kubernetes structural schemas (a CRD's openAPIV3Schema).

The models are the one definition of the API: their field descriptions are the docs, their
constraints the validation, and what only the API server can check (CEL rules comparing
quantities, durations and intervals) is attached to the field it checks, through
`json_schema_extra`. This module turns a model's JSON schema into the structural subset the
API server accepts: references inlined, no titles, `X | None` as a field that may be left out,
`int | str` as int-or-string, `dict[str, Any]` as an object that keeps unknown fields, and a
default only where the API server is to apply it (`applied_default`).
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

APPLIED = "x-execplanner-applied-default"  # marker: keep pydantic's default in the CRD
# Key order in the generated YAML, so it reads like a hand-written CRD (the rest follow).
ORDER = ("type", "format", "description", "required", "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
         "x-kubernetes-int-or-string", "anyOf", "enum", "minimum", "maximum", "minLength", "maxLength",
         "maxItems", "default", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-validations",
         "additionalProperties", "items", "properties")


class Model(BaseModel):
    """Base of the API's models: fields by their API (camelCase) names or Python names, unknown
    fields ignored (the API server has already pruned them), immutable."""
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


def rule(cel: str, message: str | None = None, *, expression: str | None = None, field_path: str | None = None,
         reason: str | None = None) -> dict[str, str]:
    """One x-kubernetes-validations entry: a CEL rule and what to say when it fails."""
    out = {"rule": cel}
    if message:
        out["message"] = message
    if expression:
        out["messageExpression"] = expression
    if field_path:
        out["fieldPath"] = field_path
    if reason:
        out["reason"] = reason
    return out


def rules(*entries: dict[str, str], **extra: Any) -> dict[str, Any]:
    """json_schema_extra for a field checked by CEL rules (and any other schema keys)."""
    return {"x-kubernetes-validations": list(entries), **extra}


def applied_default(**extra: Any) -> dict[str, Any]:
    """json_schema_extra for a field whose default the API server writes into the object."""
    return {APPLIED: True, **extra}


def structural(model: type[BaseModel]) -> dict[str, Any]:
    """The model's schema as a Kubernetes structural schema."""
    raw = model.model_json_schema(by_alias=True, mode="validation", ref_template="#/$defs/{model}")
    defs = raw.pop("$defs", {})
    return _convert(raw, defs)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The node with its reference (or single allOf, or `X | None`) inlined, not yet converted;
    the field's own keys (its description) win over the referenced model's."""
    node = dict(node)
    ref = node.pop("$ref", None)
    if ref:
        node = {**_resolve(defs[ref.rsplit("/", 1)[1]], defs), **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**_resolve(node.pop("allOf")[0], defs), **node}
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if sorted(o.get("type", "") for o in options) == ["integer", "string"]:
            lengths = {k: v for o in options for k, v in o.items() if k == "maxLength"}
            node = {**lengths, **node, "anyOf": [{"type": "integer"}, {"type": "string"}],
                    "x-kubernetes-int-or-string": True}
        elif len(options) == 1:
            del node["anyOf"]
            node = {**_resolve(options[0], defs), **node}
        else:
            raise ValueError(f"no structural form for anyOf {node['anyOf']}")
    return node


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node, defs)
    node.pop("title", None)
    if "description" in node:  # docstrings and wrapped strings read as one line
        node["description"] = " ".join(node["description"].split())
    if not node.pop(APPLIED, False):
        node.pop("default", None)
    if node.get("additionalProperties") is True:
        del node["additionalProperties"]
        node["x-kubernetes-preserve-unknown-fields"] = True
    if node.get("type") == "object" and "properties" not in node and "additionalProperties" not in node:
        node.setdefault("x-kubernetes-preserve-unknown-fields", True)
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _convert(node[key], defs)
    if "properties" in node:
        node["properties"] = {name: _convert(child, defs) for name, child in node["properties"].items()}
    return {k: node[k] for k in (*[k for k in ORDER if k in node], *[k for k in node if k not in ORDER])}
