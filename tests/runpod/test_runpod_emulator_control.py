"""The emulator's REST v2 control plane: vendor-valid responses, releases that roll out as workers cycle."""

from __future__ import annotations

import json
import re
import socket
from typing import Any

import httpx
import pytest
from emulator_harness import API_KEY, wait_for
from test_runpod_client import _operation

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.local.runpod.openapi import component, schema_errors, spec
from goldgate.runpod import ControlPlaneClient, EndpointPatch, RunPodNotFound

IMG1 = "local/worker@sha256:" + "1" * 64
IMG2 = "local/worker@sha256:" + "2" * 64

CREATE = {"name": "wire", "type": "QUEUE", "image": IMG1, "env": {"K": "v"}, "gpu": {"pools": ["ADA_24"], "count": 1},
          "workers": {"min": 0, "max": 2, "idleTimeout": 5}, "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
          "timeout": 600000, "flashboot": "OFF"}


def _http(stack: Any) -> httpx.Client:
    return httpx.Client(base_url=stack.emulator.base_url, headers={"Authorization": f"Bearer {API_KEY}"})


def _valid(schema: str, body: Any) -> None:
    assert schema_errors(component(schema), body) == []


def test_every_control_plane_response_matches_the_vendor_schema(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:
        created = http.post("/v2/serverless", json=CREATE)
        assert created.status_code == 201
        _valid("Endpoint", created.json())
        eid = created.json()["id"]
        _valid("Endpoint", http.get(f"/v2/serverless/{eid}").json())
        _valid("ListEndpointsResponse", http.get("/v2/serverless").json())
        patched = http.patch(f"/v2/serverless/{eid}", json={"image": IMG2, "workers": {"max": 3}})
        assert patched.status_code == 200
        _valid("Endpoint", patched.json())
        _valid("ListEndpointReleasesResponse", http.get(f"/v2/serverless/{eid}/releases").json())
        _valid("ListEndpointWorkersResponse", http.get(f"/v2/serverless/{eid}/workers").json())
        _valid("ListGpuTypesResponse", http.get("/v2/catalog/gpus").json())
        for response in (http.get("/v2/serverless/missing0"),
                         http.post("/v2/serverless", json={"name": "x"}),
                         http.get("/v2/serverless", headers={"Authorization": "Bearer wrong"})):
            assert response.headers["content-type"] == "application/problem+json"
            _valid("ErrorResponse", response.json())
        assert http.delete(f"/v2/serverless/{eid}").status_code == 204
        assert http.get(f"/v2/serverless/{eid}").status_code == 404


def test_workers_listing_matches_the_schema_with_live_workers(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint(workers_min=1)
    listing = wait_for(lambda: stack.control.list_workers(ep.id).workers, "a worker to start")
    with _http(stack) as http:
        _valid("ListEndpointWorkersResponse", http.get(f"/v2/serverless/{ep.id}/workers").json())
        _valid("ListEndpointReleasesResponse", http.get(f"/v2/serverless/{ep.id}/releases").json())
    assert listing[0].image == ep.image and listing[0].version == 1 and not listing[0].is_stale


@pytest.mark.parametrize("body, field", [
    ({**CREATE, "workers": {"min": 0, "max": -1}}, "workers.max"),
    ({**CREATE, "scaling": {"type": "QUEUE_DELAY"}}, "scaling"),
    ({**CREATE, "surprise": 1}, "surprise"),
    ({k: v for k, v in CREATE.items() if k != "name"}, "name"),
])
def test_invalid_create_is_a_422_naming_the_field(make_stack, body: dict[str, Any], field: str) -> None:
    stack = make_stack()
    with _http(stack) as http:
        response = http.post("/v2/serverless", json=body)
    assert response.status_code == 422
    assert any(field.split(".")[0] in e for e in response.json()["errors"]), response.json()


def test_malformed_and_hostile_requests_get_clear_errors(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:
        bad_json = http.post("/v2/serverless", content=b"{not json", headers={"Content-Type": "application/json"})
        assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["detail"]
        assert http.post("/v2/serverless", json=[1, 2]).status_code == 400
        assert http.get("/v2/serverless/../../etc/passwd").status_code == 404
        wrong_method = http.put("/v2/serverless")
        assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]
        assert http.post("/v2/serverless", json={**CREATE, "type": "LOAD_BALANCER",
                                                 "scaling": {"type": "REQUEST_COUNT", "requestCount": 1}}
                         ).status_code == 400
    # a declared body of 1 GB is refused from the headers, before anything is read
    host, port = stack.emulator.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v2/serverless HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY.encode()
                     + b"\r\nContent-Length: 1000000000\r\n\r\n{")
        assert sock.recv(100).startswith(b"HTTP/1.1 413")


def test_patching_other_fields_creates_no_release(make_stack) -> None:
    stack = make_stack()
    ep = stack.endpoint()
    stack.control.update_endpoint(ep.id, EndpointPatch(workers_max=4, idle_timeout_s=9))
    history = stack.control.list_releases(ep.id)
    assert len(history.releases) == 1 and history.endpoint_version == 1
    assert stack.control.get_endpoint(ep.id).workers_max == 4


def test_image_patch_rolls_out_as_workers_cycle_and_stale_tells_the_truth(make_stack, tmp_path) -> None:
    stack = make_stack()
    ep = stack.endpoint(image=IMG1, workers_min=1, workers_max=1, env={"MARKER": "one"})
    jobs = stack.jobs(ep.id)
    wait_for(lambda: any(w.status == "IDLE" for w in stack.control.list_workers(ep.id).workers), "worker idle")
    # held until released, not timed: it is still running when the patch lands, however slow the machine
    long_job = jobs.run({"hold": str(tmp_path)})
    wait_for(lambda: jobs.status(long_job.id).status == "IN_PROGRESS", "the long job to start")

    stack.control.update_endpoint(ep.id, EndpointPatch(image=IMG2, env={"MARKER": "two"}))
    history = stack.control.list_releases(ep.id)
    assert history.endpoint_version == 2 and history.latest.version == 2
    assert {d.field for d in history.latest.diff} == {"image", "env"}
    assert history.rollout.in_progress and history.rollout.percent_on_latest == 0
    workers = stack.control.list_workers(ep.id)
    assert [w.is_stale for w in workers.workers] == [True] and workers.stale[0].image == IMG1

    # the in-flight job finishes on the image its worker started with
    (tmp_path / "release").touch()
    done = stack.finished(jobs, long_job.id)
    assert done.output["image"] == IMG1 and done.output["marker"] == "one"
    # then the stale worker is cycled and the endpoint converges on the new release
    def converged() -> bool:
        r = stack.control.list_releases(ep.id).rollout
        return r.percent_on_latest == 100 and not r.in_progress and r.workers_total == 1

    wait_for(converged, "rollout to reach 100%")
    assert all(not w.is_stale and w.image == IMG2 for w in stack.control.list_workers(ep.id).workers)
    after = stack.finished(jobs, jobs.run({"n": 1}).id)
    assert after.output["image"] == IMG2 and after.output["marker"] == "two"


def test_endpoints_survive_an_emulator_restart_with_a_state_file(tmp_path) -> None:
    cfg = EmulatorConfig(api_key=API_KEY, logs_dir=tmp_path / "logs", state_file=tmp_path / "runpod.json")
    with RunPodEmulator(cfg).start() as emu, ControlPlaneClient(API_KEY, emu.api_base) as cp:
        from goldgate.runpod import EndpointConfig
        ep = cp.create_endpoint(EndpointConfig(name="keep", image=IMG1, gpu_pools=("ADA_24",), workers_max=0))
        cp.update_endpoint(ep.id, EndpointPatch(image=IMG2))
    with RunPodEmulator(cfg).start() as emu, ControlPlaneClient(API_KEY, emu.api_base) as cp:
        again = cp.get_endpoint(ep.id)
        assert again.image == IMG2 and len(cp.list_releases(ep.id).releases) == 2
        cp.delete_endpoint(ep.id)
        with pytest.raises(RunPodNotFound):
            cp.get_endpoint(ep.id)


def test_the_state_file_holding_endpoint_env_is_private_to_its_owner(tmp_path) -> None:
    state_file = tmp_path / "runpod.json"
    cfg = EmulatorConfig(api_key=API_KEY, logs_dir=tmp_path / "logs", state_file=state_file)
    with RunPodEmulator(cfg).start() as emu, ControlPlaneClient(API_KEY, emu.api_base) as cp:
        from goldgate.runpod import EndpointConfig
        cp.create_endpoint(EndpointConfig(name="keep", image=IMG1, gpu_pools=("ADA_24",), workers_max=0,
                                          env={"R2_SECRET_ACCESS_KEY": "s3cr3t-value"}))
    assert "s3cr3t-value" in state_file.read_text()  # endpoint env is state RunPod keeps, secrets included
    assert state_file.stat().st_mode & 0o077 == 0, oct(state_file.stat().st_mode)


def _declared(op: dict[str, Any], status: int) -> tuple[str | None, str | None]:
    """(media type, schema pointer) the spec declares for an operation's answer with this status."""
    answer = op["responses"].get(str(status)) or op["responses"]["default"]
    if "$ref" in answer:
        answer = spec()["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    for media, content in (answer.get("content") or {}).items():
        return media, content["schema"]["$ref"]
    return None, None


def _template(pattern: str) -> str:
    """An emulator route regex -> the spec's path template: (?P<id>[^/]+) -> {id}."""
    return re.sub(r"\(\?P<\w+>[^)]*\)", "{id}", pattern)


def test_every_control_plane_route_is_a_spec_operation_and_answers_as_declared(make_stack) -> None:
    stack = make_stack()
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()

    def check(response: httpx.Response) -> None:
        response.read()
        request = response.request
        op = _operation(request.method, request.url.path)
        if op is None:
            problems.append(f"{request.method} {request.url.path} is not a spec operation")
            return
        seen.add((request.method, op["operationId"]))
        media, schema = _declared(op, response.status_code)
        if schema is None:
            if response.content:
                problems.append(f"{op['operationId']} {response.status_code}: the spec declares no body")
            return
        if response.headers.get("content-type") != media:
            problems.append(f"{op['operationId']} {response.status_code}: {response.headers.get('content-type')} "
                            f"is not {media}")
        problems.extend(f"{op['operationId']} {response.status_code}: {e}" for e in
                        schema_errors(schema, response.json()))

    with httpx.Client(base_url=stack.emulator.base_url, headers={"Authorization": f"Bearer {API_KEY}"},
                      event_hooks={"response": [check]}) as http:
        reg = http.post("/v2/registries", json={"name": "r", "username": "robot", "password": "pw-1"}).json()
        http.get("/v2/registries")
        http.get(f"/v2/registries/{reg['id']}")
        eid = http.post("/v2/serverless", json={**CREATE, "registry": reg["id"]}).json()["id"]
        http.get("/v2/serverless")
        http.get(f"/v2/serverless/{eid}")
        http.patch(f"/v2/serverless/{eid}", json={"image": IMG2, "registry": None,
                                                  "scaling": {"type": "REQUEST_COUNT", "requestCount": 2}})
        http.get(f"/v2/serverless/{eid}/releases")
        http.get(f"/v2/serverless/{eid}/workers")
        http.get("/v2/catalog/gpus")
        for answer in (http.get("/v2/serverless/missing0"), http.post("/v2/serverless", json={"name": "x"}),
                       http.patch(f"/v2/serverless/{eid}", json={"workers": {"min": 9, "max": 1}}),
                       http.get("/v2/serverless", headers={"Authorization": "Bearer wrong"}),
                       http.get("/v2/registries/missing0"), http.post("/v2/registries", json={})):
            assert answer.status_code in (400, 401, 404, 422)
        http.delete(f"/v2/registries/{reg['id']}")
        http.delete(f"/v2/serverless/{eid}")
    assert problems == []
    served = {(m, _template(p.pattern)) for m, p, _, _ in stack.emulator._server.app.routes
              if p.pattern.startswith(("/v2/serverless", "/v2/registries", "/v2/catalog"))}
    assert all(_operation(m, t.replace("{id}", "x")) for m, t in served), served
    assert len(seen) == len(served)  # every operation the emulator serves was exercised above


def test_control_plane_errors_are_problem_json_before_routing_too(make_stack) -> None:
    stack = make_stack()
    host, port = stack.emulator.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v2/serverless HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + API_KEY.encode()
                     + b"\r\nContent-Length: 1000000000\r\n\r\n{")
        answer = b""
        while chunk := sock.recv(4096):  # the emulator closes the connection after refusing
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"Content-Type: application/problem+json" in head
    _valid("ErrorResponse", json.loads(body))
    with _http(stack) as http:
        not_emulated = http.get("/v2/templates")  # a REST v2 collection the emulator does not model
    assert not_emulated.status_code == 404 and not_emulated.headers["content-type"] == "application/problem+json"
    _valid("ErrorResponse", not_emulated.json())


def test_the_control_plane_wants_the_bearer_scheme(make_stack) -> None:
    stack = make_stack()
    for header in (API_KEY, f"Basic {API_KEY}", "Bearer"):
        response = httpx.get(f"{stack.emulator.base_url}/v2/serverless", headers={"Authorization": header})
        assert response.status_code == 401, header
        _valid("ErrorResponse", response.json())
    assert httpx.get(f"{stack.emulator.base_url}/v2/serverless",
                     headers={"Authorization": f"bearer {API_KEY}"}).status_code == 200  # the scheme is caseless


def test_a_template_id_is_refused_as_unknown_not_silently_ignored(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:
        created = http.post("/v2/serverless", json={**CREATE, "templateId": "30zmvf89kd"})
        assert created.status_code == 404 and "template 30zmvf89kd" in created.json()["detail"]
        assert http.get("/v2/serverless").json() == {"endpoints": []}
        eid = http.post("/v2/serverless", json=CREATE).json()["id"]
        patched = http.patch(f"/v2/serverless/{eid}", json={"templateId": "30zmvf89kd", "image": IMG2})
        assert patched.status_code == 404 and "template 30zmvf89kd" in patched.json()["detail"]
        assert http.get(f"/v2/serverless/{eid}").json()["image"] == IMG1


def test_request_count_scaling_takes_no_idle_timeout(make_stack) -> None:
    # The spec (EndpointWorkers.idleTimeout): rejected on create/update and omitted from responses when a
    # queue endpoint scales on REQUEST_COUNT.
    stack = make_stack()
    by_count = {"type": "REQUEST_COUNT", "requestCount": 2}
    with _http(stack) as http:
        refused = http.post("/v2/serverless", json={**CREATE, "scaling": by_count})
        assert refused.status_code == 400 and "idleTimeout" in refused.json()["detail"]
        created = http.post("/v2/serverless", json={**CREATE, "scaling": by_count, "workers": {"min": 0, "max": 2}})
        assert created.status_code == 201 and created.json()["workers"] == {"min": 0, "max": 2}
        eid = created.json()["id"]
        assert http.patch(f"/v2/serverless/{eid}", json={"workers": {"idleTimeout": 5}}).status_code == 400
        back = http.patch(f"/v2/serverless/{eid}", json={"scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
                                                         "workers": {"idleTimeout": 7}})
        assert back.status_code == 200 and back.json()["workers"]["idleTimeout"] == 7
        again = http.patch(f"/v2/serverless/{eid}", json={"scaling": by_count})
        assert again.status_code == 200 and "idleTimeout" not in again.json()["workers"]
