"""The typed RunPod client: what it sends is valid REST v2, and every failure is one clear exception."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest
from emulator_harness import API_KEY

from goldgate.local.runpod.openapi import schema_errors, spec
from goldgate.runpod import (
    ControlPlaneClient,
    DataPlaneClient,
    EndpointConfig,
    EndpointPatch,
    JobPolicy,
    RetryPolicy,
    RunPodAuthError,
    RunPodError,
    RunPodNotFound,
    RunPodProtocolError,
    RunPodRateLimited,
    RunPodRejected,
    RunPodUnavailable,
    Scaling,
)
from goldgate.runpod.transport import retry_after_seconds


def _operation(method: str, path: str) -> dict[str, Any] | None:
    """The spec operation for a concrete path (templates like /v2/serverless/{id} matched per segment)."""
    for template, item in spec()["paths"].items():
        pattern = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            # a literal segment beats a template ({id} would also match 'releases')
            return item[method.lower()]
    return None


class SpecRecorder:
    """An httpx request hook that checks each request against the OpenAPI document."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.problems: list[str] = []

    def __call__(self, request: httpx.Request) -> None:
        path = request.url.path
        self.seen.append((request.method, path))
        op = _operation(request.method, path)
        if op is None:
            self.problems.append(f"{request.method} {path} is not an operation in the spec")
            return
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            self.problems.append(f"{request.method} {path} lacks bearer auth")
        body = request.content
        if "requestBody" in op:
            schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            errors = schema_errors(schema, json.loads(body))
            self.problems.extend(f"{request.method} {path}: {e}" for e in errors)
        elif body:
            self.problems.append(f"{request.method} {path} sends a body the spec does not define")


def test_every_control_plane_request_validates_against_the_openapi_spec(make_stack) -> None:
    stack = make_stack()
    recorder = SpecRecorder()
    client = ControlPlaneClient(API_KEY, stack.emulator.api_base, event_hooks={"request": [recorder]})
    with client:
        ep = client.create_endpoint(EndpointConfig(
            name="spec-check", image="repo@sha256:" + "b" * 64, gpu_pools=("ADA_24", "AMPERE_24"),
            env={"STACK": "staging"}, gpu_count=1, workers_min=0, workers_max=3, idle_timeout_s=5,
            scaling=Scaling("REQUEST_COUNT", 2), timeout_ms=600_000, flashboot="FLASHBOOT",
            data_center_ids=("US-KS-2",), disk_gb=20))
        client.get_endpoint(ep.id)
        client.list_endpoints()
        client.update_endpoint(ep.id, EndpointPatch(image="repo@sha256:" + "c" * 64, env={"STACK": "prod"},
                                                    workers_max=4, idle_timeout_s=10, scaling=Scaling("QUEUE_DELAY", 2.5),
                                                    gpu_pools=("ADA_24",), timeout_ms=300_000, name="renamed"))
        client.update_endpoint(ep.id, EndpointPatch())  # empty patch: a read, not an empty PATCH
        client.list_releases(ep.id)
        client.list_workers(ep.id)
        client.list_gpu_types()
        assert client.find_endpoint("missing1") is None
        assert client.delete_endpoint(ep.id) is True
        assert client.delete_endpoint(ep.id) is False
    assert recorder.problems == []
    methods = {m for m, _ in recorder.seen}
    assert methods == {"GET", "POST", "PATCH", "DELETE"}
    assert ("PATCH", f"/v2/serverless/{ep.id}") in recorder.seen


def test_the_spec_check_catches_a_body_the_spec_forbids() -> None:
    # The recorder above must be able to fail: an unknown field and a bad scaling are violations.
    assert schema_errors("#/components/schemas/UpdateEndpointRequest", {"imageName": "x"})
    assert schema_errors("#/components/schemas/CreateEndpointRequest",
                         {"name": "x", "type": "QUEUE", "image": "i", "scaling": {"type": "QUEUE_DELAY"}})


def test_client_reads_endpoint_release_and_worker_values(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(env={"A": "1"}, workers_max=1)
    assert ep.env == {"A": "1"} and ep.workers_max == 1 and ep.gpu_pools == ("ADA_24",)
    assert ep.request_urls["run"] == f"{stack.emulator.endpoint_base}/{ep.id}/run"
    after = stack.control.update_endpoint(ep.id, EndpointPatch(image="repo@sha256:" + "d" * 64))
    assert after.id == ep.id and after.image.endswith("d" * 64)
    history = stack.control.list_releases(ep.id)
    assert [r.version for r in history.releases] == [2, 1]
    assert history.latest.diff[0].field == "image"
    assert history.rollout.percent_on_latest == 0 and not history.rollout.in_progress  # no workers yet: 0 per spec


def test_auth_failure_names_the_fix_and_never_the_key(make_stack) -> None:
    stack = make_stack()
    bad_key = "rp_wrong_key_that_must_not_leak"
    with ControlPlaneClient(bad_key, stack.emulator.api_base) as client, pytest.raises(RunPodAuthError) as err:
        client.list_endpoints()
    assert err.value.status == 401
    assert "API key" in str(err.value) and bad_key not in str(err.value) and bad_key not in repr(err.value)


def test_missing_key_is_refused_before_any_request() -> None:
    with pytest.raises(RunPodAuthError, match="no RunPod API key"):
        ControlPlaneClient("", "http://127.0.0.1:9")


def test_not_found_and_rejected_are_distinct(make_stack) -> None:
    stack = make_stack()
    with pytest.raises(RunPodNotFound):
        stack.control.get_endpoint("nope1234")
    ep = stack.endpoint()
    with pytest.raises(RunPodRejected) as err:
        stack.control.update_endpoint(ep.id, EndpointPatch(workers_min=5, workers_max=1))
    assert err.value.status == 400 and "workers.min" in str(err.value)
    with pytest.raises(RunPodRejected) as err:
        stack.control.update_endpoint(ep.id, EndpointPatch(idle_timeout_s=0))
    assert err.value.status == 422 and "idleTimeout" in str(err.value)


def test_rate_limit_is_retried_after_retry_after_then_reported(make_stack) -> None:
    stack = make_stack(rate_limit_requests=2, rate_limit_window_s=1.0)
    ep = stack.endpoint(workers_max=0)
    backend = stack.emulator.backend
    started = backend.clock()
    backend.clock = lambda: started  # the three runs fall in one window, however long a loaded machine takes
    strict = stack.jobs(ep.id, retry=RetryPolicy(attempts=1))
    strict.run({"n": 1})
    strict.run({"n": 2})
    with pytest.raises(RunPodRateLimited) as err:
        strict.run({"n": 3})
    assert err.value.status == 429 and err.value.retry_after_s is not None and err.value.retry_after_s >= 1
    backend.clock = time.monotonic  # the emulator's own clock again: the window passes
    patient = stack.jobs(ep.id, retry=RetryPolicy(attempts=3))
    assert patient.run({"n": 4}).status == "IN_QUEUE"  # waited out the window via Retry-After


def test_connection_refused_is_unavailable_with_the_base_url() -> None:
    client = DataPlaneClient(API_KEY, "ep1", "http://127.0.0.1:9/v2", retry=RetryPolicy(attempts=2, backoff_s=0.01))
    with pytest.raises(RunPodUnavailable, match="127.0.0.1:9") as err:
        client.health()
    assert API_KEY not in str(err.value)


FAST = RetryPolicy(attempts=3, backoff_s=0.01, max_backoff_s=0.02)
UNAVAILABLE = (503, {"title": "Service Unavailable", "status": 503, "detail": "try later"}, {})


def test_5xx_is_retried_for_reads(flaky) -> None:
    rp = flaky({"/v2/ep1/health": [UNAVAILABLE, (200, {"jobs": {"inQueue": 0}, "workers": {"idle": 1}}, {})]})
    health = DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST).health()
    assert health.workers == {"idle": 1} and len(rp.calls) == 2


def test_5xx_on_run_is_not_retried_because_it_could_enqueue_twice(flaky) -> None:
    rp = flaky({"/v2/ep1/run": [UNAVAILABLE, (200, {"id": "j1", "status": "IN_QUEUE"}, {})]})
    with pytest.raises(RunPodUnavailable, match="may have been applied"):
        DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST).run({"a": 1})
    assert len(rp.calls) == 1


def test_5xx_after_every_retry_says_so(flaky) -> None:
    rp = flaky({"/v2/ep1/status/j1": [UNAVAILABLE]})
    with pytest.raises(RunPodUnavailable, match="after 3 attempt") as err:
        DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST).status("j1")
    assert err.value.detail == "try later" and len(rp.calls) == 3


def test_retry_after_beyond_the_cap_is_reported_not_slept(flaky) -> None:
    rp = flaky({"/v2/ep1/health": [(429, {"error": "slow down"}, {"Retry-After": "3600"})]})
    with pytest.raises(RunPodRateLimited) as err:
        DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST).health()
    assert err.value.retry_after_s == 3600 and len(rp.calls) == 1


def test_non_json_success_is_a_protocol_error(flaky) -> None:
    rp = flaky({"/v2/ep1/health": [(200, b"<html>captive portal</html>", {"Content-Type": "text/html"})]})
    with pytest.raises(RunPodProtocolError, match="not JSON"):
        DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST).health()


def test_job_shape_missing_fields_is_a_protocol_error(flaky) -> None:
    rp = flaky({"/v2/ep1/status/j1": [(200, {"unexpected": True}, {})]})
    with pytest.raises(RunPodProtocolError):
        DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST).status("j1")


def test_all_errors_share_one_base() -> None:
    for cls in (RunPodAuthError, RunPodNotFound, RunPodRateLimited, RunPodUnavailable, RunPodRejected,
                RunPodProtocolError):
        assert issubclass(cls, RunPodError)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("12") == 12
    assert retry_after_seconds("Thu, 01 Jan 1970 00:00:00 GMT") == 0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_job_policy_and_endpoint_base_parsing() -> None:
    assert JobPolicy(600_000, 86_400_000).to_wire() == {"executionTimeout": 600_000, "ttl": 86_400_000}
    client = DataPlaneClient.for_endpoint_base(API_KEY, "http://127.0.0.1:1/v2/abc123")
    assert client.endpoint_id == "abc123" and client.base_url == "http://127.0.0.1:1/v2/abc123"
    with pytest.raises(ValueError):
        DataPlaneClient.for_endpoint_base(API_KEY, "abc")
    with pytest.raises(ValueError):
        DataPlaneClient(API_KEY, "ep1", "http://127.0.0.1:1/v2").status("")


def test_request_count_scaling_sends_no_idle_timeout_so_runpod_accepts_it(make_stack) -> None:
    # RunPod rejects workers.idleTimeout on a queue endpoint that scales on REQUEST_COUNT (the spec's
    # EndpointWorkers.idleTimeout), and leaves it out of the endpoint it returns.
    stack = make_stack()
    config = EndpointConfig(name="by-count", image="repo@sha256:" + "e" * 64, gpu_pools=("ADA_24",),
                            scaling=Scaling("REQUEST_COUNT", 2), idle_timeout_s=30)
    assert "idleTimeout" not in config.to_create_body()["workers"]
    ep = stack.control.create_endpoint(config)
    assert ep.scaling == Scaling("REQUEST_COUNT", 2) and ep.idle_timeout_s is None
    assert "idleTimeout" in EndpointConfig(name="by-delay", image="i", gpu_pools=("ADA_24",)).to_create_body()["workers"]


@pytest.mark.parametrize("path, body, call", [
    ("/v2/serverless/e1", {"id": "e1", "name": "x", "workers": {"min": "many"}, "scaling": {}},
     lambda c, d: c.get_endpoint("e1")),
    ("/v2/serverless/e1", {"id": "e1", "name": "x", "workers": {}, "scaling": "fast"},
     lambda c, d: c.get_endpoint("e1")),
    ("/v2/serverless/e1/releases", {"rollout": None, "releases": []}, lambda c, d: c.list_releases("e1")),
    ("/v2/serverless/e1/workers", {"workers": [1, 2]}, lambda c, d: c.list_workers("e1")),
    ("/v2/catalog/gpus", {"gpus": {"a": 1}}, lambda c, d: c.list_gpu_types()),
    ("/v2/ep1/health", {"jobs": [1], "workers": 3}, lambda c, d: d.health()),
    ("/v2/ep1/purge-queue", {"removed": "all"}, lambda c, d: d.purge_queue()),
], ids=["endpoint-int", "endpoint-scaling", "releases", "workers", "gpus", "health", "purge"])
def test_a_2xx_body_of_the_wrong_shape_is_a_protocol_error(flaky, path: str, body: Any, call: Any) -> None:
    rp = flaky({path: [(200, body, {})]})
    with ControlPlaneClient(API_KEY, rp.base, retry=FAST) as control, \
            DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST) as data, \
            pytest.raises(RunPodProtocolError, match=re.escape(path)):
        call(control, data)


def test_a_redirect_is_an_error_not_a_silent_success(flaky) -> None:
    # A base URL on http:// (or behind a proxy) answers 301 with no body: nothing was deleted.
    moved = (301, b"", {"Location": "https://api.runpod.io/v2/serverless/ep1"})
    rp = flaky({"/v2/serverless/ep1": [moved]})
    with ControlPlaneClient(API_KEY, rp.base, retry=FAST) as control, pytest.raises(RunPodError) as err:
        control.delete_endpoint("ep1")
    assert err.value.status == 301 and "https://api.runpod.io/v2/serverless/ep1" in str(err.value)
    rp = flaky({"/v2/ep1/purge-queue": [(307, b"", {"Location": "https://api.runpod.ai/v2/ep1/purge-queue"})]})
    with DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST) as data, pytest.raises(RunPodError, match="307"):
        data.purge_queue()


@pytest.mark.parametrize("bad", ["..", "."])
def test_a_dot_segment_id_never_addresses_another_resource(flaky, bad: str) -> None:
    # httpx resolves '.' and '..' in a path, so /v2/serverless/.. would be DELETE /v2 (and '.' the list).
    rp = flaky({})
    with ControlPlaneClient(API_KEY, rp.base, retry=FAST) as control, \
            DataPlaneClient(API_KEY, "ep1", rp.base, retry=FAST) as data:
        for call in (lambda: control.delete_endpoint(bad), lambda: control.list_releases(bad),
                     lambda: control.delete_registry(bad), lambda: data.cancel(bad), lambda: data.status(bad),
                     lambda: DataPlaneClient(API_KEY, bad, rp.base, retry=FAST).run({"a": 1})):
            with pytest.raises(ValueError, match="id"):
                call()
    assert rp.calls == []


def test_ids_with_path_characters_stay_one_path_segment(flaky) -> None:
    rp = flaky({"/v2/serverless/a%2F..%2Fb%3Fx%23y": [(404, {"title": "Not Found", "status": 404,
                                                             "detail": "endpoint not found"}, {})]})
    with ControlPlaneClient(API_KEY, rp.base, retry=FAST) as control:
        assert control.find_endpoint("a/../b?x#y") is None
    assert rp.calls == [("GET", "/v2/serverless/a%2F..%2Fb%3Fx%23y")]
