"""No secret of a stack's Pulumi config reaches a plain value: with every secret goldgate reads set (the four every
stack holds, the managed registry login, the previous webhook secret), the program under mocks sends the engine no
input that holds one, or holds the R2 credentials made from the stack's tokens, unwrapped; exports them only as
secrets; gives the API Worker none in a plain binding; and says none in a warning."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pulumi
import pytest
from infra_harness import SECRETS, filled_stack_file, is_wire_secret, unwrap, use_cloud
from test_infra_program import _settings, _traced

from infra.program import read_config, run

EVERY = {**SECRETS, "goldgate:registryUsername": "robot$puller-3d4e5f", "goldgate:registryPassword": "pw-9b8c7d6e5f4a",
         "goldgate:webhookSecretPrevious": "whsec-previous-7c1d2e3f4a5b"}
CREDENTIAL_EXPORTS = {"r2_access_key_id", "r2_secret_access_key", "backup_r2_access_key_id",
                      "backup_r2_secret_access_key"}


def _plain_places(value: Any, where: str) -> list[tuple[str, str]]:
    """(path, text) of every value under `value` that is not wrapped as a secret on the wire."""
    if is_wire_secret(value):
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _plain_places(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _plain_places(v, f"{where}[{i}]")]
    return [(where, json.dumps(value, default=str))]


def plain_bindings_holding(bindings: list[dict[str, Any]], secret_texts: dict[str, str]) -> list[tuple[str, str]]:
    """(binding, secret's name) for each Worker binding not of type secret_text whose text holds a secret."""
    return [(b["name"], name) for b in bindings if b["type"] != "secret_text"
            for name, value in secret_texts.items() if value in json.dumps(b)]


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_no_secret_of_the_stack_config_reaches_a_plain_input_export_binding_or_warning(stack, stacks_dir, tmp_path,
                                                                                     bundle, monkeypatch):
    doc = filled_stack_file(stack)["config"]["goldgate:spec"]
    doc["endpoint"]["manage_registry_credential"] = True
    cloud = use_cloud(stack, doc, EVERY)
    said: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *_a, **_k: said.append(str(message)))
    monkeypatch.setattr(pulumi.log, "info", lambda message, *_a, **_k: said.append(str(message)))
    exported: dict[str, tuple[bool, Any]] = {}

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config(stack)
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        exports = out.exports()
        names = list(exports)
        values = [pulumi.Output.from_input(exports[n]) for n in names]
        return pulumi.Output.all(*[v.is_secret() for v in values], *values, out.api.script.id,
                                 out.storage.migrations.id, out.gpu.drain_check.id).apply(
            lambda v: _traced(exported.update, {n: (v[i], v[len(names) + i]) for i, n in enumerate(names)}))

    program()
    tokens = [r for r in cloud.registered.values() if r.type.endswith("apiToken:ApiToken")]
    assert len(tokens) == 2
    # The R2 credentials the program makes of each token: its value, and the S3 secret (its sha256).
    made = [v for t in tokens for v in (f"token-value-{t.name}",
                                        hashlib.sha256(f"token-value-{t.name}".encode()).hexdigest())]
    secret_texts = {**EVERY, **{f"r2 credential {i}": v for i, v in enumerate(made)}}

    for resource in cloud.registered.values():
        for where, text in _plain_places(resource.wire, resource.name):
            leaked = [name for name, value in secret_texts.items() if value in text]
            assert not leaked, (where, leaked)   # names, never the values

    assert CREDENTIAL_EXPORTS <= set(exported)
    for name, (is_secret, value) in exported.items():
        if name in CREDENTIAL_EXPORTS:
            assert is_secret, name
        else:
            text = json.dumps(value, default=str)
            assert not [k for k, v in secret_texts.items() if v in text], name

    bindings = unwrap(cloud.one("workersScript:WorkersScript").wire["bindings"])
    assert {b["name"] for b in bindings if b["type"] == "secret_text"} == {
        "API_TOKEN", "WEBHOOK_SECRET", "RUNPOD_API_KEY", "WEBHOOK_SECRET_PREVIOUS"}
    assert plain_bindings_holding(bindings, secret_texts) == []

    for message in said:
        assert not [k for k, v in secret_texts.items() if v in message], message[:80]


def test_the_scan_finds_a_secret_given_to_a_plain_binding(stacks_dir, tmp_path, bundle, monkeypatch):
    """The check of the plain bindings is no formality: a secret put into a plain-text setting is caught."""
    from infra.components import api

    real = api.settings_vars
    monkeypatch.setattr(api, "settings_vars", lambda spec: {**real(spec), "LEAK": SECRETS["goldgate:apiToken"]})
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc)

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        out = run(spec, secrets, _settings(stacks_dir, tmp_path), bundle)
        return pulumi.Output.all(out.api.script.id, out.storage.migrations.id, out.gpu.drain_check.id)

    program()
    bindings = unwrap(cloud.one("workersScript:WorkersScript").wire["bindings"])
    assert plain_bindings_holding(bindings, SECRETS) == [("LEAK", "goldgate:apiToken")]
