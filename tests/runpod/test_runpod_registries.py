"""Registry credentials: the client's CRUD and the endpoint's `registry` (set / leave alone / clear) against the
emulator, every wire shape against RunPod's OpenAPI schemas, and the login never shown anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_harness import API_KEY
from test_runpod_client import SpecRecorder

from goldgate.local.runpod import EmulatorConfig, RunPodEmulator
from goldgate.local.runpod.openapi import component, schema_errors
from goldgate.runpod import (
    CLEAR,
    ControlPlaneClient,
    EndpointConfig,
    EndpointPatch,
    Registry,
    RegistryCredential,
    RetryPolicy,
    RunPodAuthError,
    RunPodNotFound,
    RunPodRejected,
)

IMG = "registry.example.com/your-org/goldgate-worker@sha256:" + "1" * 64
PASSWORD = "pw-correct-horse-battery-staple-42"
USERNAME = "robot$goldgate-puller"


def _http(stack: Any) -> httpx.Client:
    return httpx.Client(base_url=stack.emulator.base_url, headers={"Authorization": f"Bearer {API_KEY}"})


def _valid(schema: str, body: Any) -> None:
    assert schema_errors(component(schema), body) == []


def _login(name: str = "goldgate-staging-registry") -> RegistryCredential:
    return RegistryCredential(name, USERNAME, PASSWORD)


# ---- the emulator's routes, on the wire ------------------------------------------------------------


def test_registry_routes_answer_the_vendor_shapes_and_never_return_the_login(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:
        created = http.post("/v2/registries", json={"name": "private", "username": USERNAME, "password": PASSWORD})
        assert created.status_code == 201 and created.headers["content-type"] == "application/json"
        _valid("Registry", created.json())
        rid = created.json()["id"]
        got = http.get(f"/v2/registries/{rid}")
        assert got.status_code == 200
        _valid("Registry", got.json())
        listed = http.get("/v2/registries")
        _valid("ListRegistriesResponse", listed.json())
        assert listed.json() == {"registries": [{"id": rid, "name": "private"}]}
        for response in (created, got, listed):
            assert PASSWORD not in response.text and USERNAME not in response.text
        deleted = http.delete(f"/v2/registries/{rid}")
        assert deleted.status_code == 204 and deleted.content == b""
        for response in (http.get(f"/v2/registries/{rid}"), http.delete(f"/v2/registries/{rid}")):
            assert response.status_code == 404
            assert response.headers["content-type"] == "application/problem+json"
            _valid("ErrorResponse", response.json())
    log = (stack.emulator.logs_dir / "runpod-emulator.jsonl").read_text()
    assert "registry.created" in log and PASSWORD not in log and USERNAME not in log


@pytest.mark.parametrize("body, field", [
    ({"name": "x", "username": "u"}, "password"),
    ({"name": "x", "password": PASSWORD}, "username"),
    ({"name": "", "username": "u", "password": PASSWORD}, "name"),
    ({"name": "x", "username": "u", "password": ""}, "password"),
    ({"name": "x", "username": "u", "password": PASSWORD, "server": "registry.example.com"}, "server"),
])
def test_an_invalid_registry_create_is_a_422_problem_naming_the_field(make_stack, body: dict[str, Any],
                                                                      field: str) -> None:
    stack = make_stack()
    with _http(stack) as http:
        response = http.post("/v2/registries", json=body)
        assert http.get("/v2/registries").json() == {"registries": []}  # nothing was stored
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    _valid("ErrorResponse", response.json())
    assert any(field in e for e in response.json()["errors"]), response.json()
    assert PASSWORD not in response.text


def test_the_emulator_never_echoes_a_write_only_value_in_a_validation_error(make_stack) -> None:
    stack = make_stack()
    with _http(stack) as http:  # jsonschema quotes a value of the wrong type in its message
        response = http.post("/v2/registries", json={"name": "x", "username": [USERNAME], "password": [PASSWORD]})
    assert response.status_code == 422
    assert {e.split(":")[0] for e in response.json()["errors"]} == {"username", "password"}
    assert PASSWORD not in response.text and USERNAME not in response.text


def test_registry_routes_need_the_api_key(make_stack) -> None:
    stack = make_stack()
    with httpx.Client(base_url=stack.emulator.base_url) as http:
        response = http.get("/v2/registries", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    _valid("ErrorResponse", response.json())


# ---- the typed client ------------------------------------------------------------------------------


def test_every_registry_request_validates_against_the_openapi_spec(make_stack) -> None:
    stack = make_stack()
    recorder = SpecRecorder()
    with ControlPlaneClient(API_KEY, stack.emulator.api_base, event_hooks={"request": [recorder]}) as rp:
        reg = rp.create_registry(_login())
        assert rp.get_registry(reg.id) == reg and rp.list_registries() == (reg,)
        ep = rp.create_endpoint(EndpointConfig(name="private", image=IMG, gpu_pools=("ADA_24",), registry=reg.id))
        rp.update_endpoint(ep.id, EndpointPatch(registry=CLEAR))
        rp.update_endpoint(ep.id, EndpointPatch(registry=reg.id))
        rp.update_endpoint(ep.id, EndpointPatch(registry=CLEAR))
        assert rp.delete_registry(reg.id) is True
        assert rp.find_registry(reg.id) is None
    assert recorder.problems == []
    assert ("POST", "/v2/registries") in recorder.seen and ("DELETE", f"/v2/registries/{reg.id}") in recorder.seen


def test_create_registry_returns_the_typed_id_and_name(make_stack) -> None:
    stack = make_stack()
    reg = stack.control.create_registry(_login("goldgate-prod-registry"))
    assert isinstance(reg, Registry) and reg.name == "goldgate-prod-registry" and reg.id
    assert stack.control.get_registry(reg.id) == reg


def test_endpoint_registry_can_be_set_left_alone_and_cleared(make_stack) -> None:
    stack = make_stack()
    first, second = stack.control.create_registry(_login("a")), stack.control.create_registry(_login("b"))
    ep = stack.endpoint(registry=first.id)
    assert ep.registry == first.id
    assert stack.control.update_endpoint(ep.id, EndpointPatch(workers_max=4)).registry == first.id  # left alone
    assert stack.control.update_endpoint(ep.id, EndpointPatch(registry=second.id)).registry == second.id
    assert stack.control.update_endpoint(ep.id, EndpointPatch(registry=CLEAR)).registry is None
    assert stack.control.get_endpoint(ep.id).registry is None
    # a registry change is a container change: each one is a new release that rolls out as workers cycle
    fields = [{d.field for d in r.diff} for r in stack.control.list_releases(ep.id).releases]
    assert fields == [{"registry"}, {"registry"}, set()]


def test_patch_bodies_distinguish_leave_alone_set_and_clear() -> None:
    assert EndpointPatch().to_update_body() == {} and EndpointPatch().is_empty()
    assert EndpointPatch(registry="6n2k8v4d").to_update_body() == {"registry": "6n2k8v4d"}
    assert EndpointPatch(registry=CLEAR).to_update_body() == {"registry": None}
    assert not EndpointPatch(registry=CLEAR).is_empty()
    for body in ({"registry": "6n2k8v4d"}, {"registry": None}):
        _valid("UpdateEndpointRequest", body)
    with pytest.raises(ValueError, match="CLEAR"):
        EndpointPatch(registry="")
    with pytest.raises(ValueError, match="registry"):
        EndpointConfig(name="x", image=IMG, gpu_pools=("ADA_24",), registry="")
    assert "registry" not in EndpointConfig(name="x", image=IMG, gpu_pools=("ADA_24",)).to_create_body()


def test_an_endpoint_naming_an_unknown_registry_is_rejected_naming_it(make_stack) -> None:
    stack = make_stack()
    with pytest.raises(RunPodRejected, match="registry nosuch01 does not exist") as err:
        stack.endpoint(registry="nosuch01")
    assert err.value.status == 400
    ep = stack.endpoint()
    with pytest.raises(RunPodRejected, match="registry nosuch02 does not exist"):
        stack.control.update_endpoint(ep.id, EndpointPatch(registry="nosuch02"))
    assert stack.control.get_endpoint(ep.id).registry is None


def test_a_registry_in_use_cannot_be_deleted_until_the_endpoint_lets_go(make_stack) -> None:
    stack = make_stack()
    reg = stack.control.create_registry(_login())
    ep = stack.endpoint(registry=reg.id)
    with pytest.raises(RunPodRejected, match=f"in use by endpoint\\(s\\) {ep.id}") as err:
        stack.control.delete_registry(reg.id)
    assert err.value.status == 400
    stack.control.update_endpoint(ep.id, EndpointPatch(registry=CLEAR))
    assert stack.control.delete_registry(reg.id) is True


def test_delete_registry_is_idempotent_unless_asked_not_to_be(make_stack) -> None:
    stack = make_stack()
    reg = stack.control.create_registry(_login())
    assert stack.control.delete_registry(reg.id) is True
    assert stack.control.delete_registry(reg.id) is False
    with pytest.raises(RunPodNotFound):
        stack.control.delete_registry(reg.id, missing_ok=False)
    with pytest.raises(RunPodNotFound):
        stack.control.get_registry(reg.id)
    with pytest.raises(ValueError, match="a registry id is required"):
        stack.control.get_registry("")


def test_a_taken_registry_name_is_refused(make_stack) -> None:
    stack = make_stack()
    stack.control.create_registry(_login("same"))
    with pytest.raises(RunPodRejected, match="named 'same' already exists") as err:
        stack.control.create_registry(_login("same"))
    assert PASSWORD not in str(err.value)


def test_registries_survive_a_restart_and_the_state_file_holds_no_login(tmp_path: Path) -> None:
    cfg = EmulatorConfig(api_key=API_KEY, logs_dir=tmp_path / "logs", state_file=tmp_path / "runpod.json")
    with RunPodEmulator(cfg).start() as emu, ControlPlaneClient(API_KEY, emu.api_base) as rp:
        reg = rp.create_registry(_login())
        ep = rp.create_endpoint(EndpointConfig(name="keep", image=IMG, gpu_pools=("ADA_24",), workers_max=0,
                                               registry=reg.id))
    state = (tmp_path / "runpod.json").read_text()
    assert reg.id in state and PASSWORD not in state and USERNAME not in state
    with RunPodEmulator(cfg).start() as emu, ControlPlaneClient(API_KEY, emu.api_base) as rp:
        assert rp.get_registry(reg.id) == reg and rp.get_endpoint(ep.id).registry == reg.id
        with pytest.raises(RunPodRejected, match="in use"):
            rp.delete_registry(reg.id)


# ---- secrets stay secret ---------------------------------------------------------------------------


def test_the_login_never_shows_in_repr_or_in_a_refusal_of_it() -> None:
    login = _login()
    assert PASSWORD not in repr(login) and USERNAME not in repr(login)
    with pytest.raises(ValueError) as err:
        RegistryCredential("x", USERNAME, "")
    assert "password" in str(err.value)
    with pytest.raises(ValueError) as err:
        RegistryCredential("x", "", PASSWORD)
    assert PASSWORD not in str(err.value)


def _echo(body: str) -> dict[str, Any]:
    """A validation error that quotes the request body back (some APIs do)."""
    return {"title": f"Rejected {body}", "detail": f"cannot store {body}", "errors": [f"$: {body} is not acceptable"]}


@pytest.mark.parametrize(("status", "error"), [(422, RunPodRejected), (401, RunPodAuthError), (500, Exception)])
def test_errors_never_show_the_login_even_when_runpod_echoes_it(flaky, status: int, error: type) -> None:
    rp = flaky({"/v2/registries": [(status, _echo, {"Content-Type": "application/problem+json"})]})
    with ControlPlaneClient(API_KEY, rp.base, retry=RetryPolicy(attempts=1)) as client, \
            pytest.raises(error) as err:
        client.create_registry(_login())
    text = " ".join(str(x) for x in (err.value, repr(err.value), getattr(err.value, "detail", ""),
                                     getattr(err.value, "title", "")))
    assert "cannot store" in text  # the server's words came through ...
    assert PASSWORD not in text and USERNAME not in text and API_KEY not in text  # ... without the secrets


@pytest.mark.parametrize("as_json", [True, False], ids=["problem-json", "plain-text"])
def test_a_secret_echoed_across_the_length_cut_leaves_no_part_behind(flaky, as_json: bool) -> None:
    # Error text is cut to a few hundred characters; a password straddling the cut must not leave its head.
    def echo(body: str) -> Any:
        cut = 500 if as_json else 300
        text = "x" * (cut - 10) + PASSWORD + " was refused"
        return {"title": "Unprocessable Entity", "status": 422, "detail": text} if as_json else text.encode()

    rp = flaky({"/v2/registries": [(422, echo, {})]})
    with ControlPlaneClient(API_KEY, rp.base, retry=RetryPolicy(attempts=1)) as client, \
            pytest.raises(RunPodRejected) as err:
        client.create_registry(_login())
    text = " ".join(str(x) for x in (err.value, err.value.detail, err.value.title))
    assert "xxxxx" in text  # the server's words came through ...
    assert PASSWORD[:10] not in text  # ... and not the first characters of the password
