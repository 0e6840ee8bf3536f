"""A cloud stack holds the 100 named clients the service takes, whatever their names. Cloudflare takes at most 5 KB in
one Worker secret, and the hashes of 100 clients of 32-character names are 10,201 bytes of compact JSON (102 a
client): before, one CLIENT_TOKENS binding held them all and the program refused past about 49 such clients. Now the
hashes are split by name over CLIENT_TOKENS, CLIENT_TOKENS_2 and CLIENT_TOKENS_3 (49 such clients to a binding), and
a stack that fits one binding declares exactly the binding it did before."""

from __future__ import annotations

import hashlib
import json

import pulumi
import pytest
from infra_harness import SECRETS, filled_stack_file, is_wire_secret, unwrap, use_cloud
from previous_binding_support import _settings, bindings, refusal

import infra.program
from infra.program import read_config, run

KEY = "goldgate:clientTokens"
MAX_BYTES = 5_000  # what Cloudflare takes in one secret, as infra/program.py keeps it
PARTS = ("CLIENT_TOKENS", "CLIENT_TOKENS_2", "CLIENT_TOKENS_3")


def _tokens(count: int) -> dict[str, str]:
    """`count` clients with names of the longest a client may have, 32 characters."""
    return {f"client-{n:025d}": f"client-token-{n:04d}-0123456789abcdefghijkl" for n in range(count)}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _deploy(tokens: dict[str, str], stacks_dir, tmp_path, bundle) -> tuple[dict[str, dict], dict, str]:
    """One `pulumi up` of staging under mocks: the API Worker's bindings, its inputs as the engine would receive them
    (secrets still wrapped), and every resource's such inputs (JSON)."""
    doc = filled_stack_file("staging")["config"]["goldgate:spec"]
    cloud = use_cloud("staging", doc, {**SECRETS, KEY: json.dumps(tokens)})

    @pulumi.runtime.test
    def program():
        spec, secrets, _ = read_config("staging")
        return run(spec, secrets, _settings(stacks_dir, tmp_path), bundle).api.script.id

    program()
    script = cloud.one("workersScript:WorkersScript")
    return bindings(script), script.wire, json.dumps([r.wire for r in cloud.registered.values()], default=str)


@pytest.mark.parametrize(("count", "parts"), [(1, 1), (49, 1), (50, 2), (100, 3)])
def test_the_clients_hashes_are_split_over_as_many_bindings_as_cloudflare_needs(count, parts, stacks_dir, tmp_path,
                                                                              bundle):
    tokens = _tokens(count)
    bound, script, wire = _deploy(tokens, stacks_dir, tmp_path, bundle)
    declared = [name for name in PARTS if name in bound]
    assert declared == list(PARTS[:parts]), sorted(bound)
    texts = [unwrap(bound[name]["text"]) for name in declared]
    assert all(len(text.encode()) <= MAX_BYTES for text in texts), [len(text) for text in texts]
    assert all(bound[name]["type"] == "secret_text" for name in declared) and is_wire_secret(script["bindings"])
    merged: dict[str, str] = {}
    for text in texts:
        part = json.loads(text)
        assert not set(part) & set(merged), "a client in two bindings"
        merged.update(part)
    assert merged == {name: _hash(token) for name, token in tokens.items()}
    assert not any(token in wire for token in tokens.values())  # the Worker never holds a client's token


def test_clients_that_fit_one_binding_are_bound_exactly_as_before_the_split(stacks_dir, tmp_path, bundle):
    tokens = _tokens(49)
    bound, _, _ = _deploy(tokens, stacks_dir, tmp_path, bundle)
    before = json.dumps({name: _hash(token) for name, token in tokens.items()}, sort_keys=True, separators=(",", ":"))
    assert unwrap(bound["CLIENT_TOKENS"]["text"]) == before  # an upgrade changes nothing on such a stack


def test_the_split_is_by_name_so_the_same_clients_make_the_same_bindings(stacks_dir, tmp_path, bundle):
    tokens = _tokens(100)
    first, _, _ = _deploy(tokens, stacks_dir, tmp_path, bundle)
    again, _, _ = _deploy(dict(reversed(tokens.items())), stacks_dir, tmp_path, bundle)
    assert [unwrap(first[name]["text"]) for name in PARTS] == [unwrap(again[name]["text"]) for name in PARTS]
    assert list(json.loads(unwrap(first["CLIENT_TOKENS_2"]["text"]))) == sorted(tokens)[49:98]


def test_hashes_that_would_need_more_bindings_than_the_worker_reads_are_refused_naming_the_way_out(monkeypatch):
    # 100 clients always fit three bindings of 5,000 bytes: a smaller limit stands in for a limit that moved
    monkeypatch.setattr(infra.program, "CLIENT_TOKENS_MAX_BYTES", 3_000)
    tokens = _tokens(100)
    said = refusal({**SECRETS, KEY: json.dumps(tokens)})
    assert f"{KEY} names 100 clients" in said and "CLIENT_TOKENS, CLIENT_TOKENS_2, CLIENT_TOKENS_3" in said, said
    assert f"pulumi config rm --path '{KEY}.<name>' --stack staging" in said and "shorter names" in said
    assert not any(token in said for token in tokens.values())
