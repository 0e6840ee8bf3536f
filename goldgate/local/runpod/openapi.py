"""RunPod's REST v2 OpenAPI document (a vendored copy) and jsonschema validators over its components."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).with_name("runpod-rest-v2-openapi.json")
_URI = "urn:runpod-rest-v2"


@cache
def spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


@cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, Resource(contents=spec(), specification=DRAFT202012))


@cache
def validator_for(pointer: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema at a JSON pointer in the spec, e.g. '#/components/schemas/Endpoint'."""
    return jsonschema.Draft202012Validator({"$ref": f"{_URI}{pointer}"}, registry=_registry())


def schema_errors(pointer: str, instance: Any) -> list[str]:
    """Human-readable violations ('workers.max: -1 is less than the minimum of 0'), empty when valid."""
    out = []
    for err in sorted(validator_for(pointer).iter_errors(instance), key=lambda e: list(e.path)):
        where = ".".join(str(p) for p in err.path) or "(body)"
        out.append(f"{where}: {err.message}")
    return out


def component(name: str) -> str:
    return f"#/components/schemas/{name}"
