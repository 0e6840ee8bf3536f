"""Review of named client tokens, as an attacker: a client's token is matched only as itself (not a prefix, another
case, a NUL or a non-ASCII letter added, nor beside the API token in a second field), on both runtimes alike, and
never reaches a line; the operator's routes (`/api/admin/*`: a recovery calls RunPod and may settle any job) answer a
client's token 403 `operator_only`, while the API token is served there as before; each client's Idempotency-Keys are
its own (before, a second client sending the first's key and body got the first's job); a client over its rate limit
is told the limit counts per token, not "per API token"."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from service_testkit import API_TOKEN
from test_review32_inputsvc_uploads import AUTH, LocalRuntime
from test_review33_ratelimit_runtimes import CREATES
from test_review34_clients_auth import ALICE, BOB, HASHES, _bearer, _create, _lines, runtime  # noqa: F401

ZERO_JOB = "0" * 32


def _raw_status(port: int, authorization: bytes) -> int:
    """GET /api/workflows with `authorization` as its bytes on the wire, and its second field twice when it names two
    bearers: the status answered (0 when the server closed without one)."""
    head = b"GET /api/workflows HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n"
    head += b"authorization: " + authorization + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("value", [
    f"Bearer {ALICE.upper()}", f"Bearer {ALICE[:32]}", f"Bearer {ALICE}\x00", f"Bearer {ALICE}x",
    f"Bearer {HASHES['alice'][:16]}", f"Bearer {ALICE}, Bearer {ALICE}", f"Basic {ALICE}", f"Bearer{ALICE}",
    f"Bearer {'A' * 1_000_000}", f"Bearer {ALICE}é",
])
def test_a_near_miss_of_a_clients_token_is_answered_401_on_both_runtimes(runtime, value):  # noqa: F811
    if isinstance(runtime, LocalRuntime):  # on the wire as given: httpx sends no NUL nor a non-ASCII letter
        status = _raw_status(runtime.server.port, value.encode("utf-8"))
    else:
        status = runtime.call("GET", "/api/workflows", b"", {"authorization": value}).status
    # the local server's edge answers a NUL 400 and a 1 MB field 431 before the core; never 200
    assert status in (400, 401, 431) and (status == 401 or "\x00" in value or len(value) > 100_000), status
    _lines(runtime)


@pytest.mark.parametrize("spacing", ["Bearer  {}", "bearer {}", "BEARER {}"])
def test_a_clients_token_with_the_spacing_and_case_the_api_token_takes_is_served_as_it(runtime, spacing):  # noqa: F811
    assert runtime.call("GET", "/api/workflows", b"", {"authorization": spacing.format(API_TOKEN)}).status == 200
    served = runtime.call("GET", "/api/workflows", b"", {"authorization": spacing.format(ALICE)})
    assert served.status == 200


def test_an_admin_route_refuses_a_clients_token_403_and_serves_the_api_token(runtime):  # noqa: F811
    job = _create(runtime, AUTH).json["job_id"]
    refused = runtime.call("POST", f"/api/admin/recover/{job}", b"", _bearer(ALICE))
    assert refused.status == 403, refused.body
    error: dict[str, Any] = json.loads(refused.body)["error"]
    assert error["code"] == "operator_only" and "API token" in error["message"]
    # nothing was looked up for it: an unknown job is refused the same, before a 404 would say it is unknown
    assert runtime.call("POST", f"/api/admin/recover/{ZERO_JOB}", b"", _bearer(ALICE)).status == 403
    assert runtime.call("POST", f"/api/admin/recover/{ZERO_JOB}", b"", AUTH).status == 404
    assert runtime.call("POST", f"/api/admin/recover/{job}", b"", AUTH).status in (200, 409)
    lines = _lines(runtime)
    (line,) = [x for x in lines if (x.get("http") or {}).get("status") == 403
               and x["http"]["path"] == f"/api/admin/recover/{job}"]
    assert line["data"]["client"] == "alice"


def test_a_clients_token_in_a_second_authorization_field_beside_the_api_token_is_no_token(runtime):  # noqa: F811
    """Two fields are one comma-joined value on both runtimes: neither token alone is matched in it."""
    if isinstance(runtime, LocalRuntime):
        answer = runtime.http.get("/api/workflows", headers=[("authorization", f"Bearer {ALICE}"),
                                                              ("authorization", f"Bearer {API_TOKEN}")])
        status = answer.status_code
    else:
        status = runtime.call("GET", "/api/workflows", b"",
                              {"authorization": f"Bearer {ALICE}, Bearer {API_TOKEN}"}).status
    assert status == 401


def test_a_client_over_its_create_limit_is_told_the_limit_is_its_own_tokens(runtime):  # noqa: F811
    answers = [_create(runtime, _bearer(ALICE), f"p{n}") for n in range(CREATES + 1)]
    refused = answers[-1]
    assert refused.status == 429
    message = json.loads(refused.body)["error"]["message"]
    assert "per API token" not in message and "each named client's apart" in message


def _keyed(api: Any, token: str, key: str, prompt: str = "a lighthouse") -> Any:
    body = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}}).encode()
    return api.call("POST", "/api/queue/create", body, {**_bearer(token), "content-type": "application/json",
                                                            "idempotency-key": key})


def test_each_client_has_its_own_idempotency_keys_apart_from_the_others_and_the_api_tokens(runtime):  # noqa: F811
    """Two clients that both number their creates (key "1") each get their own job: before, the second got the
    first's job (same body: replayed, another client's job recorded as the first's) or a 422 (another body)."""
    alices = _keyed(runtime, ALICE, "1")
    assert alices.status == 202
    bobs = _keyed(runtime, BOB, "1")
    assert bobs.status == 202 and bobs.headers.get("idempotent-replayed") is None, bobs.body
    assert bobs.json["job_id"] != alices.json["job_id"]
    operators = _keyed(runtime, API_TOKEN, "1", "another prompt")
    assert operators.status == 202 and operators.json["job_id"] not in (alices.json["job_id"], bobs.json["job_id"])
    # each client's own retry is still its own job, and the API token's previous keys are as they were
    again = _keyed(runtime, BOB, "1")
    assert again.status == 202 and again.json["job_id"] == bobs.json["job_id"]
    assert again.headers.get("idempotent-replayed") == "true"
    assert _keyed(runtime, ALICE, "1", "another prompt").status == 422
    assert runtime.call("GET", f"/api/status/{bobs.json['job_id']}", b"", AUTH).json["client"] == "bob"


def test_a_client_over_its_create_limit_retrying_its_key_gets_its_own_job_never_anothers(runtime):  # noqa: F811
    mine = _keyed(runtime, ALICE, "k")
    assert mine.status == 202
    for n in range(CREATES):
        _create(runtime, _bearer(BOB), f"b{n}")
    # bob is over his limit: his create with alice's key and body is no replay of his, so it is refused 429
    assert _keyed(runtime, BOB, "k").status == 429
