"""The Worker's rate limit counting under the real Pyodide (what Python Workers run), against JavaScript bindings that
misbehave (review 33, rlsec): one whose promise never settles, and ones whose outcome's `success` is null or a
number (bool() read both as over the limit, refusing every request). Each count is asked as the runtime asks the Worker's fetch (JavaScript calling a Python
coroutine), so the bound on the wait runs on Pyodide's own event loop and timers. A binding that misbehaves lets
the request through within the bound; only `success: false` refuses it."""

from __future__ import annotations

from typing import Any

import pytest
from worker_upload import run_probe

PROBE = r'''
import asyncio
import json
import time

from pyodide.code import run_js
from pyodide.ffi import create_proxy
from service.app import create_app
from service.cloudflare_entry import BindingRateLimit
from service.config import ServiceConfig
from service.workflows import Registry

bindings = run_js("""
({
  never: { limit(options) { return new Promise(() => {}); } },
  null_success: { async limit(options) { return { success: null }; } },
  number_success: { async limit(options) { return { success: 0 }; } },
  within: { async limit(options) { return { success: true }; } },
  over: { async limit(options) { return { success: false }; } },
})
""")
config = ServiceConfig.from_mapping({
    "stack": "probe", "api_token": "tok-ProbeApiToken-0123456789", "webhook_secret": "whs-ProbeSecret-0123456789",
    "runpod_api_key": "rpk-probe", "runpod_endpoint_base": "https://api.example/v2/probe",
    "public_base_url": "https://api.example", "create_rate_limit_per_minute": 2})
answers = {}


async def count(name):
    app = create_app(config, None, None, None, registry=Registry([]), log_sink=lambda line: None,
                     rate_limits={"create": BindingRateLimit(getattr(bindings, name))})
    started = time.monotonic()
    try:
        refused = await asyncio.wait_for(app.within_rate("create", "current"), 5)
        outcome = "through" if refused is None else refused.code
    except TimeoutError:
        outcome = "still waiting after 5 s"
    answers[name] = {"outcome": outcome, "waited_s": round(time.monotonic() - started, 1)}


import dataclasses

from service.cloudflare_entry import _rate_limits

env = run_js("({ RATE_LIMIT_CREATE: { async limit(options) { return { success: true }; } }, RATE_LIMIT_INPUTS: '600' })")
limits, unbound = _rate_limits(env, dataclasses.replace(config, inputs_rate_limit_per_minute=2))
answers["bound"] = {"limits": sorted(limits), "unbound": unbound}

as_the_runtime_calls = run_js("(count, name) => count(name)")
handler = create_proxy(count)
for name in ("never", "null_success", "number_success", "within", "over"):
    await as_the_runtime_calls(handler, name)
handler.destroy()
json.dumps(answers)
'''


@pytest.fixture(scope="module", params=["pyodide", "pyodide-py313"])
def probed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_probe(PROBE, request.param, tmp_path_factory.mktemp("rlsec"))


def test_a_binding_that_never_answers_lets_the_request_through_within_the_bound(probed):
    assert probed["never"]["outcome"] == "through", probed["never"]
    assert probed["never"]["waited_s"] <= 2, probed["never"]


def test_a_binding_of_another_type_under_a_rate_limit_name_is_taken_as_unbound(probed):
    """A JavaScript binding object's `limit` is a callable JsProxy; a plain-text setting under the name is none."""
    assert probed["bound"] == {"limits": ["create"], "unbound": ["RATE_LIMIT_INPUTS"]}


@pytest.mark.parametrize("name", ["null_success", "number_success"])
def test_a_binding_answering_no_boolean_is_taken_as_failed_never_as_over_the_limit(probed, name):
    assert probed[name]["outcome"] == "through", probed[name]
    # true and false are still read as they are
    assert (probed["within"]["outcome"], probed["over"]["outcome"]) == ("through", "rate_limited")
