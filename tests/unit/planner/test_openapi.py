"""The OpenAPI document's bodies are the API's wire models, and every reference resolves."""
from __future__ import annotations

import json
import re

from execplanner.api import ivoa
from execplanner.planner.http import openapi


def test_every_reference_resolves():
    doc = openapi.document()
    refs = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs and refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])


def test_bodies_are_the_models():
    schemas = openapi.document()["components"]["schemas"]
    for model in ivoa.DOCUMENTED:
        fields = {f.alias or name for name, f in model.model_fields.items()}
        assert set(schemas[model.__name__]["properties"]) == fields, model.__name__
    assert schemas["AcceptsRequest"]["properties"]["tasktype"]["enum"] == sorted(ivoa.NOTE_TYPES)
    assert schemas["OfferSetRequest"]["properties"]["offers"]["anyOf"][0]["maximum"] == 10  # the CRD holds 10
    assert schemas["NoteResources"]["additionalProperties"] is False  # unknown resources are refused
