"""Every Cloudflare resource the program declares, checked against the installed pulumi-cloudflare's own schema.

Pulumi's mocks accept any inputs, so a binding `type` Cloudflare does not know, an R2 jurisdiction the bucket
resource refuses, a string where a number belongs or a missing required field would pass every other test and fail
only at `pulumi up`. The package's input types (`*Args`) and their documented "Available values" are the schema:
each input the engine receives is checked against them, nested types included."""

from __future__ import annotations

import collections.abc
import copy
import re
import typing
from functools import cache
from typing import Any

import pulumi
import pulumi_cloudflare as cloudflare
import pytest
from infra_harness import filled_stack_file, use_cloud
from pulumi import _types
from test_infra_program import _settings

from infra.program import read_config, run


@cache
def available_values(cls: type) -> dict[str, frozenset[str]]:
    """Engine property name -> the values its docstring allows ("Available values: ..."), for enum-like inputs."""
    names = _types.input_type_py_to_pulumi_names(cls)
    out = {}
    for chunk in (cls.__init__.__doc__ or "").split(":param ")[1:]:
        match = re.match(r"\S+\s+(\w+):(.*)", chunk, re.DOTALL)
        allowed = re.search(r"Available values: ([^\n]*)", match.group(2)) if match else None
        if match and allowed:
            # The generated docs render `_` as `*` ("r2*bucket" is r2_bucket).
            out[names.get(match.group(1), match.group(1))] = frozenset(
                v.replace("*", "_") for v in re.findall(r'"([^"]*)"', allowed.group(1)))
    return out


def _element(typ: Any) -> Any:
    """The plain type inside `Union[T, Awaitable[T], Output[T]]` (how every input type is spelled)."""
    if typing.get_origin(typ) is not typing.Union:
        return typ
    for arg in typing.get_args(typ):
        origin = typing.get_origin(arg)
        if origin is not collections.abc.Awaitable and origin is not pulumi.Output and arg is not pulumi.Output:
            return arg
    return typ


def value_problems(value: Any, typ: Any, allowed: frozenset[str] | None, where: str) -> list[str]:
    typ = _element(typ)
    origin = typing.get_origin(typ)
    if origin in (collections.abc.Sequence, list):
        if not isinstance(value, list):
            return [f"{where}: {value!r} is not a list"]
        return [p for i, v in enumerate(value) for p in value_problems(v, typing.get_args(typ)[0], allowed,
                                                                        f"{where}[{i}]")]
    if origin in (collections.abc.Mapping, dict):
        if not isinstance(value, dict):
            return [f"{where}: {value!r} is not a mapping"]
        return [p for k, v in value.items() for p in value_problems(v, typing.get_args(typ)[1], None, f"{where}.{k}")]
    if _types.is_input_type(typ):
        return input_problems(value, typ, where)
    # Numbers cross the wire as doubles: an integer input arrives as 604800.0.
    fits = {str: lambda v: isinstance(v, str), bool: lambda v: isinstance(v, bool),
            int: lambda v: isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer(),
            float: lambda v: isinstance(v, int | float) and not isinstance(v, bool)}.get(typ)
    if fits is not None and not fits(value):
        return [f"{where}: {value!r} is not a {typ.__name__}"]
    if allowed and value not in allowed:
        return [f"{where}: {value!r} is not one of {sorted(allowed)}"]
    return []


def input_problems(value: Any, cls: type, where: str) -> list[str]:
    """What the provider would refuse in `value`, an object of input type `cls` as the engine receives it."""
    if not isinstance(value, dict):
        return [f"{where}: {value!r} is not an object ({cls.__name__})"]
    types, allowed = _types.input_type_types(cls), available_values(cls)
    problems = [f"{where}: required {key} is missing ({cls.__name__})"
                for key in sorted(_types._required_property_names(cls) - set(value))]
    for key, v in value.items():
        if key not in types:
            problems.append(f"{where}: {key} is not an input of {cls.__name__}")
        else:
            problems += value_problems(v, types[key], allowed.get(key), f"{where}.{key}")
    return problems


def declared_problems(stack: str, doc: dict[str, Any], stacks_dir, tmp_path, bundle) -> tuple[list[str], set[str]]:
    cloud = use_cloud(stack, doc)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.api.script.id, out.storage.migrations.id, out.storage.lifecycle.id,
                                 out.endpoint_base).apply(lambda _: None)

    program()
    problems, checked = [], set()
    for r in cloud.registered.values():
        if not r.type.startswith("cloudflare:index/"):
            continue
        args = getattr(cloudflare, r.type.rsplit(":", 1)[1] + "Args")
        checked.add(r.type.rsplit(":", 1)[1])
        problems += input_problems(r.inputs, args, r.name)
    return problems, checked


def _every_option(doc: dict[str, Any]) -> dict[str, Any]:
    """STAGING with every optional Cloudflare resource: custom domain, route, retention cron, an EU bucket."""
    doc = copy.deepcopy(doc)
    doc["storage"]["jurisdiction"] = "eu"
    doc["api"].update(custom_domain="api-staging.example.com", zone_id="0123456789abcdef0123456789abcdef",
                      route="api-staging.example.com/*")
    doc["database"]["retention"] = {"keep_days": 30, "metrics_keep_days": 365, "cron": "30 3 * * *"}
    return doc


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_every_cloudflare_input_the_program_declares_is_one_the_provider_accepts(stack, stacks_dir, tmp_path, bundle):
    problems, checked = declared_problems(stack, filled_stack_file(stack)["config"]["goldgate:spec"], stacks_dir,
                                          tmp_path, bundle)
    assert problems == []
    assert {"WorkersScript", "R2Bucket", "R2BucketLifecycle", "D1Database", "ApiToken",
            "WorkersScriptSubdomain"} <= checked


def test_the_optional_cloudflare_resources_are_declared_as_the_provider_accepts(stacks_dir, tmp_path, bundle):
    doc = _every_option(filled_stack_file("staging")["config"]["goldgate:spec"])
    problems, checked = declared_problems("staging", doc, stacks_dir, tmp_path, bundle)
    assert problems == []
    assert {"WorkersCustomDomain", "WorkersRoute", "WorkersCronTrigger"} <= checked


def test_the_schema_check_catches_what_the_mocks_let_through():
    # It must see an unknown binding type, a bucket jurisdiction the resource refuses, a text max age and a
    # missing required field: each passes Pulumi's mocks.
    script = {"accountId": "a", "scriptName": "s", "bindings": [{"type": "r2", "name": "RESULTS"}]}
    assert input_problems(script, cloudflare.WorkersScriptArgs, "api") == [
        f"api.bindings[0].type: 'r2' is not one of {sorted(available_values(cloudflare.WorkersScriptBindingArgs)['type'])}"]
    assert "jurisdiction" in input_problems({"accountId": "a", "name": "b", "jurisdiction": "EU"},
                                            cloudflare.R2BucketArgs, "bucket")[0]
    rule = {"id": "x", "enabled": True, "conditions": {"prefix": ""},
            "deleteObjectsTransition": {"condition": {"type": "Age", "maxAge": "7d"}}}
    wrong_age = "lifecycle.rules[0].deleteObjectsTransition.condition.maxAge: '7d' is not a int"
    assert input_problems({"accountId": "a", "bucketName": "b", "rules": [rule]}, cloudflare.R2BucketLifecycleArgs,
                          "lifecycle") == [wrong_age]
    assert input_problems({"accountId": "a", "scriptName": "s"}, cloudflare.WorkersCronTriggerArgs, "cron") == [
        "cron: required schedules is missing (WorkersCronTriggerArgs)"]
