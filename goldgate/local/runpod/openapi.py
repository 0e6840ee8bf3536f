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
    return json.loads(SPEC_PATH.read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, Resource(contents=spec(), specification=DRAFT202012))


@cache
def validator_for(pointer: str) -> jsonschema.Draft202012Validator:
    """A validator for the schema at a JSON pointer in the spec, e.g. '#/components/schemas/Endpoint'."""
    return jsonschema.Draft202012Validator({"$ref": f"{_URI}{pointer}"}, registry=_registry())


def schema_errors(pointer: str, instance: Any) -> list[str]:
    """Human-readable violations ('workers.max: -1 is less than the minimum of 0'), empty when valid."""
    errors = sorted(validator_for(pointer).iter_errors(instance), key=lambda e: list(e.path))
    others = any(err.validator != "unevaluatedProperties" for err in errors)
    out = []
    for err in errors:
        message = _unknown_fields(err) if others and err.validator == "unevaluatedProperties" else err.message
        if message:
            where = ".".join(str(p) for p in err.path) or "(body)"
            out.append(f"{where}: {message}")
    return out


def _unknown_fields(err: jsonschema.ValidationError) -> str | None:
    """An unevaluatedProperties error beside others, naming only the fields the schema does not declare. A part of
    an allOf that fails leaves all its fields "unevaluated": '(body): gpu, name, scaling, type were unexpected' for
    a bad `scaling` alone would send an operator hunting for typos in good fields. None when nothing is unknown."""
    declared = _declared(err.schema)
    unknown = [key for key in err.instance if key not in declared] if isinstance(err.instance, dict) else []
    if not unknown:
        return None
    return (f"Unevaluated properties are not allowed ({', '.join(repr(k) for k in unknown)} "
            f"{'was' if len(unknown) == 1 else 'were'} unexpected)")


def _declared(schema: Any, seen: frozenset[str] = frozenset()) -> set[str]:
    """The property names a schema declares, through $ref, allOf/anyOf/oneOf and if/then/else."""
    if not isinstance(schema, dict):
        return set()
    names = set(schema.get("properties") or {})
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and ref not in seen:
        target: Any = spec()
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        names |= _declared(target, seen | {ref})
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            names |= _declared(sub, seen)
    for key in ("if", "then", "else"):
        names |= _declared(schema.get(key), seen)
    return names


def component(name: str) -> str:
    return f"#/components/schemas/{name}"
