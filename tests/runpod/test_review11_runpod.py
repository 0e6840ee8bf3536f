"""Review 11 of the RunPod clients: every call has an overall deadline, so a peer trickling its answer a byte
at a time is let go with one error naming the call, instead of holding it for hours; an API key read with its
line break works, and one no header can carry is refused without being shown."""

from __future__ import annotations

import json

import pytest
from emulator_harness import API_KEY
from serving import Trickle

from goldgate.runpod import (
    ControlPlaneClient,
    DataPlaneClient,
    RetryPolicy,
    RunPodAuthError,
    RunPodUnavailable,
)

KEY = "rp-review11-key-0123456789"


@pytest.mark.parametrize("call", ["status", "run"])
def test_an_answer_trickled_a_byte_at_a_time_ends_at_the_calls_deadline(call: str) -> None:
    server = Trickle(json.dumps({"id": "job-1", "status": "IN_QUEUE", "pad": "x" * 400}).encode())
    client = DataPlaneClient(KEY, "ep1", f"{server.url}/v2", retry=RetryPolicy(attempts=3), deadline_s=0.5)
    try:
        with pytest.raises(RunPodUnavailable) as info:
            client.status("job-1") if call == "status" else client.run({"prompt": "a lighthouse"})
    finally:
        client.close()
        server.close()
    message = str(info.value)
    path = "/v2/ep1/status/job-1" if call == "status" else "/v2/ep1/run"
    assert path in message and "within 0.5 s" in message and "may or may not have been applied" in message
    assert KEY not in message
    assert not server.finished  # the client hung up instead of reading the answer to its end
    assert server.requests == 1  # a peer this slow is not asked again


def test_a_key_read_with_its_line_break_still_authenticates(make_stack) -> None:
    stack = make_stack()
    with ControlPlaneClient(API_KEY + "\n", stack.emulator.api_base) as client:
        assert client.list_endpoints() == ()


@pytest.mark.parametrize("key", [KEY[:8] + "\n" + KEY[8:], KEY[:8] + " " + KEY[8:], KEY[:8] + "é" + KEY[8:]],
                         ids=["line-break", "space", "non-ascii"])
def test_a_key_no_header_can_carry_is_refused_up_front_without_showing_it(key: str) -> None:
    with pytest.raises(RunPodAuthError) as info:
        ControlPlaneClient(key, "http://127.0.0.1:9")
    message = str(info.value)
    assert "copy it again" in message
    assert KEY[:8] not in message and KEY[8:] not in message
