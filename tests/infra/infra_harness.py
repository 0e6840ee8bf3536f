"""Helpers for the Pulumi program tests: filled-in stack files and Pulumi mocks with a recording monitor."""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor

from goldgate.spec import STACKS_DIR

ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker for a secret value on the wire
SECRETS = {"goldgate:runpodApiKey": "rp-key-test", "goldgate:webhookSecret": "whsec-test-5f0c2a9e41d7",
           "goldgate:apiToken": "api-token-test-8b3e61d2", "goldgate:cloudflareApiToken": "cf-token-test"}


def digest_ref(label: str) -> str:
    return f"registry.example.com/example/goldgate-worker@sha256:{hashlib.sha256(label.encode()).hexdigest()}"


@functools.lru_cache(maxsize=16)
def _parsed_yaml(text: str) -> Any:
    """A stack file's text parsed once per process (callers get a deep copy): the file is read every time, so
    an edited file is parsed anew, and PyYAML's pure-Python parser costs ~10 ms a file, a few times per
    test."""
    return yaml.safe_load(text)


def filled_stack_file(stack: str, source: Path = STACKS_DIR) -> dict[str, Any]:
    """The committed stack file with its placeholders replaced, as a test operator would."""
    doc = copy.deepcopy(_parsed_yaml((source / f"Pulumi.{stack}.yaml").read_text()))
    spec = doc["config"]["goldgate:spec"]
    spec["cloud"]["cloudflare_account_id"] = ACCOUNT_ID
    spec["image"] = digest_ref("release-1")
    spec["api"]["public_base_url"] = spec["api"]["public_base_url"].replace("<WORKERS_SUBDOMAIN>", "example")
    return doc


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    protect: bool
    secret_outputs: list[str]
    parent: str
    wire: dict[str, Any]  # the inputs as the engine received them, secrets still wrapped
    id: str = ""
    retain_on_delete: bool = False  # `pulumi destroy` or a replacement leaves the cloud resource in place


@dataclass
class Cloud:
    """Pulumi mocks standing in for Cloudflare and RunPod; ids are random per run, like the real ones."""

    stack: str
    registered: dict[str, Registered] = field(default_factory=dict)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        state = unwrap(args.inputs)
        kind = args.typ
        if kind == "cloudflare:index/d1Database:D1Database":
            rid = str(uuid.uuid4())
            state["uuid"] = rid
        elif kind == "cloudflare:index/apiToken:ApiToken":
            rid = uuid.uuid4().hex
            state["value"] = f"token-value-{args.name}"
        elif kind == "pulumi-python:dynamic/runpod:ServerlessEndpoint":
            rid = uuid.uuid4().hex[:14]
            state.update(endpoint_id=rid, drift=[], idle_scaled_down=False, created_at="2026-11-28T00:00:00Z")
        elif kind == "pulumi-python:dynamic/runpod:RegistryCredential":
            rid = uuid.uuid4().hex[:8]  # like the real provider: the login is never part of the state
            state = {k: v for k, v in state.items() if k not in ("username", "password")}
            state.update(registry_id=rid, registry_name=f"{state['name']}-a1b2c3")
        else:
            rid = f"{args.name}-id"
        self.registered[args.name].id = rid
        self.registered[args.name].inputs = unwrap(args.inputs)
        self.registered[args.name].wire = dict(args.inputs)
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:
        return {}

    def by_type(self, kind: str) -> list[Registered]:
        return [r for r in self.registered.values() if r.type.endswith(kind)]

    def one(self, kind: str) -> Registered:
        found = self.by_type(kind)
        assert len(found) == 1, f"expected one {kind}, found {[r.name for r in found]}"
        return found[0]


class RecordingMonitor(MockMonitor):
    """The mock monitor, also keeping what the engine would receive (protect, secret outputs, secret wrapping)."""

    def __init__(self, cloud: Cloud) -> None:
        super().__init__(cloud)
        self.cloud = cloud

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            self.cloud.registered[request.name] = Registered(
                type=request.type, name=request.name, inputs={}, protect=bool(request.protect),
                secret_outputs=list(request.additionalSecretOutputs), parent=request.parent, wire={},
                retain_on_delete=bool(request.retainOnDelete))
        return super().RegisterResource(request)


def use_cloud(stack: str, spec_doc: dict[str, Any], secrets: dict[str, str] = SECRETS) -> Cloud:
    """Point the Pulumi runtime at fresh mocks for `stack` (preview=False: every Output resolves)."""
    cloud = Cloud(stack)
    pulumi.runtime.set_mocks(cloud, project="goldgate", stack=stack, preview=False,
                             monitor=RecordingMonitor(cloud))
    config = {"goldgate:spec": json.dumps(spec_doc), **secrets}
    pulumi.runtime.set_all_config(config, secret_keys=list(secrets))
    return cloud


def unwrap(value: Any) -> Any:
    """The plain value under Pulumi's secret wrappers (what the provider would finally receive)."""
    if is_wire_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def is_wire_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270"



def secret_lengths_the_program_and_worker_disagree_on(key: str, field: str, letter: str) -> list[int]:
    """Each length from 1 to 39 of the stack secret `key` (a run of `letter`; the other secrets SECRETS') that the
    program (`read_config` of a cloud STAGING) and the API worker (ServiceConfig, where it is `field`) do not both
    accept or both refuse."""
    from goldgate.errors import SpecError
    from infra.program import read_config
    from service.config import ConfigError, ServiceConfig

    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    base = {"stack": "staging", "api_token": SECRETS["goldgate:apiToken"],
            "webhook_secret": SECRETS["goldgate:webhookSecret"], "runpod_api_key": "rp",
            "runpod_endpoint_base": "https://api.runpod.ai/v2/ep", "public_base_url": "https://api.example.com"}
    disagree = []
    for length in range(1, 40):
        value = letter * length
        use_cloud("staging", doc, {**SECRETS, key: value})
        try:
            read_config("staging")
            program_accepts = True
        except SpecError:
            program_accepts = False
        try:
            ServiceConfig.from_mapping({**base, field: value})
            worker_accepts = True
        except ConfigError:
            worker_accepts = False
        if program_accepts != worker_accepts:
            disagree.append(length)
    return disagree
