"""Named client tokens on both runtimes (the local server over HTTP on loopback, the Worker's entry over the stand-ins
of its bindings): a client's token is served as that client, whose name goes on the request's line (`data.client`),
on the job it creates (jobs.client) and in its status; each client has its own rate limit budget, apart from the
other clients' and the API token's; a token no client holds (a revoked one) is answered 401 as any wrong token. The
API token, and its rotation, are served as before. No client token, nor its hash, reaches a log line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testkit import API_TOKEN, check_log_lines, edge_in_thread, make_config
from test_review32_inputsvc_uploads import AUTH, SMALL_LIMIT, CloudRuntime, LocalRuntime, image_bytes
from test_review33_ratelimit_runtimes import CREATES, START, UPLOADS, _cloud

from service import clients as client_tokens
from service.config import ConfigError

ALICE = "cli-alice-0123456789abcdefghijklmnopqrstuv"
BOB = "cli-bob-0123456789abcdefghijklmnopqrstuvwxyz"
REVOKED = "cli-carol-0123456789abcdefghijklmnopqrstuv"
HASHES = {"alice": hashlib.sha256(ALICE.encode()).hexdigest(), "bob": hashlib.sha256(BOB.encode()).hexdigest()}
NEVER_LOGGED = (ALICE, BOB, REVOKED, *HASHES.values())


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(params=["local", "cloud"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path, log_lines: list[str]) -> Iterator[Any]:
    if request.param == "cloud":
        yield from _cloud(request, tmp_path, log_lines, CLIENT_TOKENS=json.dumps(HASHES))
        return
    moto_endpoint, fake, s3 = (request.getfixturevalue(n) for n in ("moto_endpoint", "fake_runpod", "s3"))
    with edge_in_thread(tmp_path, moto_endpoint, fake.base, log_lines, max_input_bytes=SMALL_LIMIT,
                        create_rate_limit_per_minute=CREATES, inputs_rate_limit_per_minute=UPLOADS,
                        client_tokens=HASHES) as server:
        for limit in server.service.app.rate_limits.values():
            limit.counter.clock = lambda: START  # one minute throughout
        running = LocalRuntime(server, s3, fake, log_lines)
        yield running
        running.close()


def _create(runtime: Any, headers: dict[str, str], prompt: str = "a lighthouse") -> Any:
    body = json.dumps({"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}}).encode()
    return runtime.call("POST", "/api/queue/create", body, {**headers, "content-type": "application/json"})


def _upload(runtime: Any, headers: dict[str, str], seed: int) -> Any:
    return runtime.call("POST", "/api/inputs", image_bytes("image/png", seed=seed),
                        {**headers, "content-type": "image/png"})


def _client_column(runtime: Any, job_id: str) -> Any:
    conn = runtime.env.DB.conn if isinstance(runtime, CloudRuntime) else runtime.server.service.db.conn
    return conn.execute("SELECT client FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]


def _lines(runtime: Any) -> list[dict[str, Any]]:
    raw = runtime._log
    check_log_lines(list(raw), extra_forbidden=NEVER_LOGGED)
    return [json.loads(line) for line in raw]


def _client_of_lines(lines: list[dict[str, Any]], path: str) -> list[Any]:
    return [(x.get("data") or {}).get("client") for x in lines if (x.get("http") or {}).get("path") == path]


def test_a_clients_token_creates_a_job_recorded_shown_and_logged_as_that_client(runtime):
    mine = _create(runtime, _bearer(ALICE))
    assert mine.status == 202, mine.body
    ours = _create(runtime, AUTH)
    assert ours.status == 202, ours.body
    job, operators = mine.json["job_id"], ours.json["job_id"]
    assert _client_column(runtime, job) == "alice" and _client_column(runtime, operators) is None
    # the status says who queued it, whoever reads it (the API token too)
    assert runtime.call("GET", f"/api/status/{job}", b"", AUTH).json["client"] == "alice"
    seen = runtime.call("GET", f"/api/status/{job}", b"", _bearer(ALICE))
    assert seen.status == 200 and seen.json["client"] == "alice"
    # another caller's job is no client's to read (test_review35_own_jobs.py): still a line of bob's
    assert runtime.call("GET", f"/api/status/{operators}", b"", _bearer(BOB)).status == 404
    lines = _lines(runtime)
    assert _client_of_lines(lines, "/api/queue/create") == ["alice", None]
    assert _client_of_lines(lines, f"/api/status/{operators}") == ["bob"]


def test_a_token_no_client_holds_is_answered_401_and_the_api_token_is_served_as_before(runtime):
    for token in (REVOKED, HASHES["alice"], ALICE + "x", ALICE[:-1]):
        refused = _create(runtime, _bearer(token))
        assert refused.status == 401 and refused.error["code"] == "unauthorized"
    assert _create(runtime, AUTH).status == 202
    assert runtime.call("GET", "/api/workflows", b"", _bearer(BOB)).status == 200
    assert len(runtime.runs()) == 1
    _lines(runtime)


def test_one_clients_loop_over_its_limits_leaves_the_other_client_and_the_api_token_served(runtime):
    assert [_create(runtime, _bearer(ALICE), f"p{n}").status for n in range(CREATES + 2)] == \
        [202] * CREATES + [429, 429]
    assert [_upload(runtime, _bearer(ALICE), n).status for n in range(UPLOADS + 1)] == [201] * UPLOADS + [429]
    # bob's budget and the API token's are their own: each still gets its whole limit
    assert [_create(runtime, _bearer(BOB), f"b{n}").status for n in range(CREATES + 1)] == [202] * CREATES + [429]
    assert [_create(runtime, AUTH, f"o{n}").status for n in range(CREATES + 1)] == [202] * CREATES + [429]
    assert [_upload(runtime, _bearer(BOB), 10 + n).status for n in range(UPLOADS)] == [201] * UPLOADS
    assert [_upload(runtime, AUTH, 20 + n).status for n in range(UPLOADS)] == [201] * UPLOADS
    lines = _lines(runtime)
    refused = [x for x in lines if x["event"] in ("job.rate_limited", "input.refused")]
    assert [(x["data"].get("client"), x["http"]["path"]) for x in refused] == [
        ("alice", "/api/queue/create"), ("alice", "/api/queue/create"), ("alice", "/api/inputs"),
        ("bob", "/api/queue/create"), (None, "/api/queue/create")]


def test_the_worker_counts_each_client_under_its_own_key_and_the_api_token_under_its_old_one(request, tmp_path,
                                                                                            log_lines):
    for cloud in _cloud(request, tmp_path, log_lines, CLIENT_TOKENS=json.dumps(HASHES)):
        _create(cloud, _bearer(ALICE))
        _create(cloud, AUTH)
        _upload(cloud, _bearer(BOB), 1)
        assert cloud.env.RATE_LIMIT_CREATE.calls == [{"key": "create:client:alice"}, {"key": "create:current"}]
        assert cloud.env.RATE_LIMIT_INPUTS.calls == [{"key": "inputs:client:bob"}]


@pytest.mark.parametrize("binding, said", [
    ("not json", "is not JSON"),
    (json.dumps([HASHES["alice"]]), "must be a JSON object"),
    (json.dumps({"Alice": HASHES["alice"]}), "is not a client name"),
    (json.dumps({"alice": ALICE}), "is not the sha256 of its token"),
    (json.dumps({"alice": HASHES["alice"].upper()}), "is not the sha256 of its token"),
    (json.dumps({"alice": HASHES["alice"], "bob": HASHES["alice"]}), "two clients have the same token"),
    (json.dumps({f"c{n}": hashlib.sha256(str(n).encode()).hexdigest() for n in range(101)}), "at most 100"),
])
def test_a_malformed_client_tokens_binding_serves_the_api_token_refuses_clients_and_says_so_once(
        request, tmp_path, log_lines, binding, said):
    for cloud in _cloud(request, tmp_path, log_lines, CLIENT_TOKENS=binding):
        assert _create(cloud, AUTH).status == 202
        assert _create(cloud, _bearer(ALICE)).status == 401
        assert cloud.call("GET", "/api/workflows", b"", _bearer(ALICE)).status == 401
        lines = _lines(cloud)
        (refusal,) = [x for x in lines if x["event"] == "service.client_tokens_refused"]
        assert said in refusal["message"] and refusal["level"] == "error"
        assert "CLIENT_TOKENS" in refusal["message"] and HASHES["alice"] not in json.dumps(refusal)


def test_a_worker_without_the_binding_serves_the_api_token_and_no_client(request, tmp_path, log_lines):
    for cloud in _cloud(request, tmp_path, log_lines):
        assert _create(cloud, AUTH).status == 202
        assert _create(cloud, _bearer(ALICE)).status == 401
        assert not [x for x in _lines(cloud) if x["event"] == "service.client_tokens_refused"]


def test_the_previous_api_token_is_served_beside_the_clients_while_it_is_rotated(tmp_path, moto_endpoint,
                                                                                 fake_runpod, s3, log_lines):
    previous = "tok-PreviousApiToken-5a7c9e1b3d"
    with edge_in_thread(tmp_path, moto_endpoint, fake_runpod.base, log_lines, api_token_previous=previous,
                        client_tokens=HASHES) as server:
        runtime = LocalRuntime(server, s3, fake_runpod, log_lines)
        try:
            assert [_create(runtime, _bearer(token)).status for token in (previous, API_TOKEN, ALICE)] == [202] * 3
            lines = _lines(runtime)
        finally:
            runtime.close()
    created = [x for x in lines if (x.get("http") or {}).get("path") == "/api/queue/create"]
    assert [(x.get("data") or {}).get("token") for x in created] == ["previous", None, None]
    assert [(x.get("data") or {}).get("client") for x in created] == [None, None, "alice"]


def test_every_clients_hash_is_compared_whichever_matches(monkeypatch):
    """No early exit: a match on the first client, on the last, and no match at all take as many comparisons."""
    hashes = {f"c{n}": hashlib.sha256(f"token-{n}".encode()).hexdigest() for n in range(100)}
    calls: list[int] = []
    real = client_tokens.hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(client_tokens.hmac, "compare_digest", counting)
    found = []
    for token in (b"token-0", b"token-99", b"token-none"):
        calls.clear()
        found.append(client_tokens.client_token_used(hashes, token))
        assert len(calls) == 100
    assert found == ["c0", "c99", None]


@pytest.mark.parametrize("value, said", [
    ("alice", "must be a JSON object"),
    ({"-alice": HASHES["alice"]}, "is not a client name"),
    ({"a" * 33: HASHES["alice"]}, "is not a client name"),
    ({"alice": "0" * 63}, "is not the sha256 of its token"),
])
def test_the_service_refuses_a_config_with_bad_client_hashes_naming_the_key(value, said):
    with pytest.raises(ConfigError, match=said) as refused:
        make_config(client_tokens=value)
    assert "client_tokens" in str(refused.value) and HASHES["alice"] not in str(refused.value)
