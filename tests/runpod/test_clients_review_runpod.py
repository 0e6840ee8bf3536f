"""Review of the RunPod transport: answers that are no RunPod answer (a body without end, a body that cannot
be decoded) end in one clear RunPodError naming the call, never an httpx traceback or a hang."""

from __future__ import annotations

import httpx
import pytest
from serving import EndlessBody

from goldgate.runpod import ControlPlaneClient, DataPlaneClient, RetryPolicy, RunPodError, RunPodProtocolError
from goldgate.runpod.transport import MAX_RESPONSE_BYTES

KEY = "rp-review-key-0123456789"


@pytest.mark.parametrize("status", [200, 502])
def test_a_body_without_end_is_cut_off_with_a_clear_error_not_read_whole(status: int) -> None:
    server = EndlessBody(status, cap=MAX_RESPONSE_BYTES + MAX_RESPONSE_BYTES // 2)
    client = DataPlaneClient(KEY, "ep1", f"http://127.0.0.1:{server.port}/v2", retry=RetryPolicy(attempts=1))
    try:
        with pytest.raises(RunPodProtocolError) as info:
            client.status("job-1")
    finally:
        client.close()
        server.close()
    message = str(info.value)
    assert "/v2/ep1/status/job-1" in message and "more than" in message and info.value.status == status
    assert KEY not in message
    assert not server.finished  # the client stopped reading; it did not take in the whole stream


def test_a_body_that_cannot_be_decoded_is_a_clear_error_naming_the_call() -> None:
    transport = httpx.MockTransport(
        lambda _request: httpx.Response(200, content=b"not gzip at all", headers={"content-encoding": "gzip"}))
    with ControlPlaneClient(KEY, "https://api.example.test", transport=transport) as client, \
            pytest.raises(RunPodError) as info:
        client.get_endpoint("ep1")
    assert "GET https://api.example.test/v2/serverless/ep1" in str(info.value) and "decoded" in str(info.value)
    assert KEY not in str(info.value)


def test_an_error_body_is_still_read_for_its_detail() -> None:
    transport = httpx.MockTransport(lambda _request: httpx.Response(
        422, json={"title": "Unprocessable Entity", "status": 422, "detail": "workers.max must be >= min"}))
    with ControlPlaneClient(KEY, "https://api.example.test", transport=transport) as client, \
            pytest.raises(RunPodError, match="workers.max must be >= min") as info:
        client.get_endpoint("ep1")
    assert info.value.status == 422 and info.value.title == "Unprocessable Entity"
