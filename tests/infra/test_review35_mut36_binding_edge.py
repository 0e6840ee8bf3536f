"""The named clients' hashes at exactly the 5,000 bytes Cloudflare takes in one Worker secret (infra/program.py
CLIENT_TOKENS_MAX_BYTES), where session 35's mutation audit found nothing holding the edge: they fit the one
CLIENT_TOKENS binding a stack of fewer clients has, with no CLIENT_TOKENS_2; a byte more splits them in two."""

from __future__ import annotations

import json

import pytest
from infra_harness import unwrap
from test_review35_cap_client_bindings import MAX_BYTES, PARTS, _deploy, _hash


def _tokens_of(total_bytes: int) -> dict[str, str]:
    """50 clients whose hashes make `total_bytes` of compact JSON: 1 + 70 a client + the names' characters."""
    lengths = [30] * 50
    lengths[-1] = total_bytes - 1 - 70 * 50 - 30 * 49
    tokens = {f"c{n:02d}" + "x" * (length - 3): f"client-token-{n:04d}-0123456789abcdefghijkl"
              for n, length in enumerate(lengths)}
    assert len(json.dumps({name: _hash(t) for name, t in tokens.items()}, separators=(",", ":"))) == total_bytes
    return tokens


@pytest.mark.parametrize(("total", "parts"), [(MAX_BYTES, 1), (MAX_BYTES + 1, 2)])
def test_hashes_of_exactly_the_limit_fit_one_binding(total, parts, stacks_dir, tmp_path, bundle):
    tokens = _tokens_of(total)
    bound, _, _ = _deploy(tokens, stacks_dir, tmp_path, bundle)
    declared = [name for name in PARTS if name in bound]
    assert declared == list(PARTS[:parts]), sorted(bound)
    merged: dict[str, str] = {}
    for name in declared:
        text = unwrap(bound[name]["text"])
        assert len(text) <= MAX_BYTES
        merged.update(json.loads(text))
    assert merged == {name: _hash(token) for name, token in tokens.items()}
