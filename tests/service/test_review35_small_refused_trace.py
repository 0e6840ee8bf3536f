"""A refused request's log line names the caller's trace: a client that sends a valid W3C `traceparent` finds its
failed call (a 400, 401, 405, 413, 429, and on the Worker the entry's own 400 and 503) in the service's log by its
own trace id, as it finds a job it created. An invalid traceparent names none, and its text never reaches the log.
Each case runs on both runtimes: the local server over HTTP on loopback, and the Cloudflare Worker's entry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_review32_inputsvc_uploads import AUTH, image_bytes
from test_review33_ratelimit_runtimes import (  # noqa: F401 - cloud, runtime: fixtures
    CREATES,
    UPLOADS,
    CloudRuntime,
    cloud,
    create,
    runtime,
)

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACED = {"traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}
JSON = {**AUTH, "content-type": "application/json", **TRACED}


def _line_answering(runtime: Any, status: int) -> dict[str, Any]:  # noqa: F811 - the imported fixture
    """The log line of the last request answered `status`."""
    lines = [line for line in runtime.lines() if (line.get("http") or {}).get("status") == status]
    assert lines, f"no line for a {status}: {runtime.lines()}"
    return lines[-1]


def _upload(runtime: Any, data: bytes, headers: dict[str, str]) -> Any:  # noqa: F811 - the imported fixture
    return runtime.call("POST", "/api/inputs", data, {**AUTH, "content-type": "image/png", **headers})


REFUSALS = {
    "invalid_json": ("POST", "/api/queue/create", b'{"workflow_id": ', JSON, 400),
    "unknown_workflow_field": ("POST", "/api/queue/create", b'{"workflow_id": "sdxl-txt2img", "x": 1}', JSON, 400),
    "no_token": ("POST", "/api/queue/create", b"{}", {"content-type": "application/json", **TRACED}, 401),
    "wrong_method": ("GET", "/api/queue/create", b"", {**AUTH, **TRACED}, 405),
    "body_too_large": ("POST", "/api/queue/create", b'{"p": "' + b"x" * 70_000 + b'"}', JSON, 413),
    "no_route": ("GET", "/api/nothing-here", b"", {**AUTH, **TRACED}, 404),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_request_with_a_traceparent_is_logged_under_the_callers_trace(runtime, case):  # noqa: F811
    method, path, body, headers, status = REFUSALS[case]
    answer = runtime.call(method, path, body, headers)
    assert answer.status == status, answer.body
    line = _line_answering(runtime, status)
    assert line["trace_id"] == TRACE, line
    assert line["job_id"] is None  # no job was made: the trace is the caller's, not a job's


def test_a_create_refused_for_its_rate_is_logged_under_the_callers_trace(runtime):  # noqa: F811
    assert [create(runtime, f"p{n}").status for n in range(CREATES)] == [202] * CREATES
    body = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": "one more"}}).encode()
    assert runtime.call("POST", "/api/queue/create", body, JSON).status == 429
    line = _line_answering(runtime, 429)
    assert (line["event"], line["trace_id"]) == ("job.rate_limited", TRACE)


def test_an_upload_refused_for_its_rate_before_its_body_is_read_is_logged_under_the_callers_trace(
        runtime):  # noqa: F811
    # Both runtimes count an upload before they read its body (App.count_upload): the line is written there.
    for n in range(UPLOADS):
        assert _upload(runtime, image_bytes("image/png", seed=n), {}).status == 201
    assert _upload(runtime, image_bytes("image/png", seed=9), TRACED).status == 429
    line = _line_answering(runtime, 429)
    assert (line["event"], line["reason"], line["trace_id"]) == ("input.refused", "rate_limited", TRACE)


def test_a_refused_upload_is_logged_under_the_callers_trace(runtime):  # noqa: F811
    assert _upload(runtime, b"GIF89a" + b"\0" * 40, TRACED).status == 400
    line = _line_answering(runtime, 400)
    assert (line["event"], line["reason"], line["trace_id"]) == ("input.refused", "invalid_image", TRACE)


@pytest.mark.parametrize("traceparent", [
    f"ff-{TRACE}-00f067aa0ba902b7-01",  # version ff is invalid
    f"00-{TRACE.upper()}-00f067aa0ba902b7-01",
    "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
    f"00-{TRACE}-00f067aa0ba902b7-01-<script>not-a-trace</script>",  # version 00 has four fields
])
def test_an_invalid_traceparent_names_no_trace_and_its_text_stays_out_of_the_log(runtime, traceparent):  # noqa: F811
    answer = runtime.call("POST", "/api/queue/create", b'{"workflow_id": ', {**JSON, "traceparent": traceparent})
    assert answer.status == 400
    line = _line_answering(runtime, 400)
    assert line["trace_id"] is None, line
    assert "not-a-trace" not in json.dumps(runtime.lines())


def test_the_worker_entrys_own_refusals_name_the_callers_trace(cloud):  # noqa: F811
    """The two answers the Worker's entry gives before the core sees the request: a body that ends short of its
    Content-Length (400 body_unreadable), and an upload the isolate has no room to read (503 uploads_busy)."""
    assert isinstance(cloud, CloudRuntime)
    short = cloud.call("POST", "/api/queue/create", b'{"workflow_id": "x"}', {**JSON, "content-length": "100"})
    assert (short.status, short.error["code"]) == (400, "body_unreadable")
    line = _line_answering(cloud, 400)
    assert (line["event"], line["trace_id"]) == ("http.body_unreadable", TRACE)

    cloud.entry.UPLOADS.held = 10**12  # other uploads fill the isolate's budget
    try:
        busy = _upload(cloud, image_bytes("image/png"), TRACED)
    finally:
        cloud.entry.UPLOADS.held = 0
    assert (busy.status, busy.error["code"]) == (503, "uploads_busy")
    line = _line_answering(cloud, 503)
    assert (line["reason"], line["trace_id"]) == ("uploads_busy", TRACE)
