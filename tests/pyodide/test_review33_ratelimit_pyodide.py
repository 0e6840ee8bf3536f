"""The Worker's rate limit binding call under the real Pyodide (what Python Workers run): `BindingRateLimit` hands the
binding its options as a plain JS object `{key}`, as Cloudflare's Workers Rate Limiting binding takes them. Pyodide's
`to_js` makes a JS Map of a Python dict unless told otherwise, and a Map has no `key` property: the binding (and
miniflare's stand-in of it, which reads `options.key` and defaults it to "") would count every request under one
empty key, so the previous and the current token, and the two routes, would share one budget. The binding here is
JavaScript, with the binding's checks: options a plain object holding a string `key` and no unknown field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from worker_upload import run_probe

PROBE = r'''
import json

from pyodide.code import run_js
from service.cloudflare_entry import BindingRateLimit

binding = run_js("""
({
  seen: [],
  counts: new Map(),
  async limit(options) {
    const plain = typeof options === "object" && options !== null && Object.getPrototypeOf(options) === Object.prototype;
    this.seen.push(plain ? JSON.stringify(options) : String(options));
    if (!plain) throw new Error("invalid rate limit options");
    const unknown = Object.keys(options).filter((k) => !["key", "limit", "period"].includes(k));
    if (unknown.length) throw new Error(`bad rate limit options: [${unknown}]`);
    if (typeof options.key !== "string") throw new Error(`invalid key: ${options.key}`);
    const taken = this.counts.get(options.key) || 0;
    if (taken >= 2) return { success: false };
    this.counts.set(options.key, taken + 1);
    return { success: true };
  },
})
""")
limit = BindingRateLimit(binding)


async def asked(key):
    try:
        return await limit.limit(key)
    except Exception as exc:  # the binding's refusal, as the Worker would meet it
        return f"error: {str(exc).splitlines()[0][:200]}"

answers = {}
for key in ("create:current", "create:previous"):
    answers[key] = [await asked(key) for _ in range(3)]
json.dumps({"answers": answers, "seen": list(binding.seen)})
'''


@pytest.fixture(scope="module", params=["pyodide", "pyodide-py313"])
def probed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_probe(PROBE, request.param, tmp_path_factory.mktemp("ratelimit"))


def test_the_binding_is_asked_with_a_plain_object_holding_the_key(probed):
    assert probed["seen"] == [json.dumps({"key": key}, separators=(",", ":"))
                              for key in ("create:current",) * 3 + ("create:previous",) * 3]


def test_each_key_has_its_own_count_so_a_rotations_two_tokens_never_share_one(probed):
    assert probed["answers"] == {"create:current": [True, True, False], "create:previous": [True, True, False]}
