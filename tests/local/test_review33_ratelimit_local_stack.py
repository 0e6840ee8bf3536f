"""A local stack's api.rate_limits reach the service `goldgate up` starts, which counts them in process as the Worker's
bindings count them in the cloud: past the limit within the minute, a create and an upload are answered 429
`rate_limited` with Retry-After over HTTP, and nothing is done for them."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
from PIL import Image
from stackfiles import stacks_file
from test_review32_fixspec_input_limits_local import _host_config, _with_api  # STAGING's api block set

from goldgate.local.platform import LocalPlatform
from service.config import ServiceConfig


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (seed % 256, 40, 90)).save(out, format="PNG")
    return out.getvalue()


def test_the_stack_host_gives_its_service_the_stacks_rate_limits_and_their_defaults(home: Path) -> None:
    config = _host_config(home, _with_api(home, rate_limits={"create_per_minute": 30, "inputs_per_minute": 4}))
    assert (config["create_rate_limit_per_minute"], config["inputs_rate_limit_per_minute"]) == (30, 4)
    taken = ServiceConfig.from_mapping(config)
    assert (taken.create_rate_limit_per_minute, taken.inputs_rate_limit_per_minute) == (30, 4)
    default = _host_config(home, stacks_file(home))
    assert (default["create_rate_limit_per_minute"], default["inputs_rate_limit_per_minute"]) == (600, 600)


def test_a_local_stack_answers_429_rate_limited_over_http_past_its_limits(home: Path) -> None:
    platform = LocalPlatform(home, _with_api(home, rate_limits={"create_per_minute": 1, "inputs_per_minute": 1}))
    platform.up("staging", timeout_s=90)
    try:
        status = platform.status("staging")
        assert status.running and status.api_url
        if time.time() % 60 > 45:  # the window is the clock's minute: start the requests inside one
            time.sleep(61 - time.time() % 60)
        with httpx.Client(base_url=status.api_url, timeout=30,
                          headers={"Authorization": f"Bearer {platform.api_token('staging')}"}) as api:
            uploads = [api.post("/api/inputs", content=_png(n), headers={"Content-Type": "image/png"})
                       for n in range(2)]
            creates = [api.post("/api/queue/create", json={"workflow_id": "sdxl-txt2img",
                                                           "inputs": {"prompt": f"a lighthouse {n}"}})
                       for n in range(2)]
            anonymous = api.post("/api/inputs", content=_png(3), headers={"Content-Type": "image/png",
                                                                          "Authorization": "Bearer wrong-token"})
        assert [r.status_code for r in uploads] == [201, 429], uploads[-1].text
        # The first create is the service's to answer: no release is deployed on this stack, so RunPod refuses it
        # (502); counted either way. The second never gets that far.
        assert creates[0].status_code in (202, 502) and creates[1].status_code == 429, creates[0].text
        for refused, route in ((uploads[1], "POST /api/inputs"), (creates[1], "POST /api/queue/create")):
            assert refused.headers["retry-after"] == "60"
            error = refused.json()["error"]
            assert error["code"] == "rate_limited" and route in error["message"], error
            assert "1 requests a minute" in error["message"], error
        assert anonymous.status_code == 401
    finally:
        platform.down("staging")
