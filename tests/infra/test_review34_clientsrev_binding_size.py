"""Review of named client tokens on the cloud: the CLIENT_TOKENS binding is one Worker secret, and Cloudflare takes at
most 5 KB in one (Workers platform limits, "Environment variable size"). JSON of 100 clients' sha256 hex is 7 KB and
more: before, `pulumi up` declared it and Cloudflare refused the script's upload mid-deploy. Now the binding is
compact JSON, and the clients past what one holds go on in CLIENT_TOKENS_2 and CLIENT_TOKENS_3 (review 35)."""

from __future__ import annotations

import json

from infra_harness import SECRETS, unwrap
from previous_binding_support import bindings, deploy, refusal

KEY = "goldgate:clientTokens"
CLIENT_TOKENS_MAX_BYTES = 5_000  # as infra/program.py keeps under Cloudflare's 5 KB


def _tokens(count: int, name_chars: int) -> dict[str, str]:
    return {f"c{n:0{name_chars - 1}d}": f"client-token-{n:04d}-0123456789abcdefghijkl" for n in range(count)}


def test_clients_whose_hashes_fit_one_binding_are_bound_compactly(stacks_dir, tmp_path, bundle):
    tokens = _tokens(60, 3)
    text = unwrap(bindings(deploy("staging", {**SECRETS, KEY: json.dumps(tokens)}, stacks_dir, tmp_path,
                                  bundle))["CLIENT_TOKENS"]["text"])
    assert len(text) <= CLIENT_TOKENS_MAX_BYTES, len(text)
    assert ", " not in text and ": " not in text, "the binding is not compact JSON"
    assert sorted(json.loads(text)) == sorted(tokens)


def test_clients_whose_hashes_are_over_what_cloudflare_takes_in_one_binding_go_on_in_a_second(stacks_dir, tmp_path,
                                                                                              bundle):
    tokens = _tokens(100, 12)
    bound = bindings(deploy("staging", {**SECRETS, KEY: json.dumps(tokens)}, stacks_dir, tmp_path, bundle))
    texts = [unwrap(bound[name]["text"]) for name in ("CLIENT_TOKENS", "CLIENT_TOKENS_2")]
    assert "CLIENT_TOKENS_3" not in bound
    assert all(len(text) <= CLIENT_TOKENS_MAX_BYTES for text in texts), [len(text) for text in texts]
    assert sorted(name for text in texts for name in json.loads(text)) == sorted(tokens)
    said = refusal({**SECRETS, KEY: json.dumps(_tokens(101, 12))})  # the service's own bound, whatever the names
    assert "names 101 clients; a stack takes at most 100" in said, said
