"""A create whose answer never comes back (a gateway 502/504 after RunPod acted, a dropped connection): the
providers must find what they created rather than leave it behind, and must never take over what they did not
create. The RunPod emulator on loopback does the work; only its answer to the chosen POST is replaced."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from runpod_harness import Emulator
from test_infra_registry_provider import credential
from test_infra_runpod_provider import declared

from goldgate.local.runpod.server import Reply
from goldgate.runpod import EndpointConfig, RunPodError, RunPodUnavailable
from infra.runpod_provider import RunPodEndpointProvider
from infra.runpod_registry_provider import RunPodRegistryCredentialProvider

GATEWAY_TIMEOUT = Reply(504, {"title": "Gateway Timeout", "status": 504, "detail": "upstream timed out"},
                        content_type="application/problem+json")


# What reaches the client instead: a gateway's 504, or a 2xx whose body is not RunPod's (a proxy's mangling).
UNREADABLE = Reply(201, "created")


def lose_answers(runpod: Emulator, path: str, *, applied: bool, reply: Reply = GATEWAY_TIMEOUT) -> list[int]:
    """Every POST to `path` answers `reply`; the emulator still acts on it when `applied`. Returns the list the
    lost answers' real statuses are appended to."""
    app = runpod.emu._server.app
    handle: Callable[..., Reply] = app.handle
    lost: list[int] = []

    def gateway(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        if method == "POST" and target == path:
            if applied:
                lost.append(handle(method, target, headers, body).status)
            return reply
        return handle(method, target, headers, body)

    app.handle = gateway
    return lost


@pytest.mark.parametrize("reply", [GATEWAY_TIMEOUT, UNREADABLE], ids=["504", "unreadable-2xx"])
def test_an_endpoint_created_behind_a_lost_answer_is_adopted_not_left_running(runpod, reply):
    # Otherwise Pulumi records nothing, the next `pulumi up` creates a second endpoint, and the first keeps its
    # workers_min GPU workers (billed) where nothing will ever delete it.
    lost = lose_answers(runpod, "/v2/serverless", applied=True, reply=reply)
    created = RunPodEndpointProvider().create(declared(runpod, workers_min=1))
    assert lost == [201]
    with runpod.control() as rp:
        endpoints = rp.list_endpoints()
    assert [e.id for e in endpoints] == [created.id] == [created.outs["endpoint_id"]]
    assert endpoints[0].name == "goldgate-staging" and created.outs["drift"] == []


def test_a_lost_create_that_did_nothing_still_fails_and_takes_no_same_named_endpoint(runpod):
    with runpod.control() as rp:  # e.g. the endpoint a deliberate `pulumi up --replace` is about to replace
        other = rp.create_endpoint(EndpointConfig(name="goldgate-staging", image=declared(runpod)["image"],
                                                  gpu_pools=("ADA_24",)))
    lose_answers(runpod, "/v2/serverless", applied=False)
    with pytest.raises(RunPodUnavailable, match="504"):
        RunPodEndpointProvider().create(declared(runpod))
    with runpod.control() as rp:
        assert [e.id for e in rp.list_endpoints()] == [other.id]


def test_a_registry_credential_created_behind_a_lost_answer_is_adopted(runpod):
    # Its name carries a fresh random suffix, so a retry would store the login a second time under another name.
    lost = lose_answers(runpod, "/v2/registries", applied=True)
    created = RunPodRegistryCredentialProvider().create(credential(runpod))
    assert lost == [201]
    with runpod.control() as rp:
        registries = rp.list_registries()
    assert [r.id for r in registries] == [created.id] == [created.outs["registry_id"]]
    assert created.outs["registry_name"] == registries[0].name
    assert "password" not in created.outs and "username" not in created.outs


def test_a_lost_registry_create_that_did_nothing_still_fails(runpod):
    lose_answers(runpod, "/v2/registries", applied=False)
    with pytest.raises(RunPodError, match="504") as err:
        RunPodRegistryCredentialProvider().create(credential(runpod))
    assert credential(runpod)["password"] not in str(err.value)
    with runpod.control() as rp:
        assert rp.list_registries() == ()


def test_a_lost_create_that_cannot_be_checked_says_what_to_clean_up(runpod):
    # RunPod acted, then went away: the operator must learn that a stray endpoint may exist, and its name.
    app = runpod.emu._server.app
    handle = app.handle
    posted: list[int] = []

    def failing(method: str, target: str, headers: dict[str, str], body: bytes) -> Any:
        if posted:
            return Reply(503, {"title": "Service Unavailable", "status": 503}, content_type="application/problem+json")
        if method == "POST" and target == "/v2/serverless":
            posted.append(handle(method, target, headers, body).status)
            return GATEWAY_TIMEOUT
        return handle(method, target, headers, body)

    app.handle = failing
    with pytest.raises(RunPodError) as err:
        RunPodEndpointProvider().create(declared(runpod))
    message = str(err.value)
    assert posted == [201] and "504" in message
    assert "may have been created anyway" in message and "'goldgate-staging'" in message and "delete" in message
