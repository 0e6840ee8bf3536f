"""Per-client rate limits on the routes that cost money or storage (service/ratelimit.py): past the stack's
api.rate_limits an API token's creates and uploads within the minute are answered 429 `rate_limited` with
Retry-After, and nothing is done for them: no job row, no RunPod call, no stored object. The core App over SQLite,
moto's S3 and the fake RunPod, its clock a test's (the counting is the in-process window the local stack uses)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testkit import API_TOKEN, BUCKET, RUNPOD_KEY, Harness, LogCapture, make_config
from test_review32_inputsvc_uploads import image_bytes

from service.app import create_app
from service.config import ConfigError, ServiceConfig
from service.httpx_transport import HttpxTransport
from service.runpod import HttpRunPodGateway
from service.s3_store import S3ResultStore
from service.sqlite_database import SqliteDatabase

PREVIOUS_TOKEN = "tok-PreviousApiToken-3c5e7a9b1d"
CREATES, UPLOADS = 3, 2  # the limits a minute of these tests' stack
START = 1_800_000_000.0  # a minute's start: the window the first request falls in


@pytest.fixture
def limited(db_path: Path, moto_endpoint: str, fake_runpod: Any, log_lines: LogCapture, s3: Any,
            _store_client: Any) -> Iterator[Callable[..., Harness]]:
    """A factory of the core App with rate limits (`overrides` change its config), its clock at START."""
    made: list[tuple[Harness, HttpxTransport]] = []

    def make(rate_limits: Any = None, **overrides: Any) -> Harness:
        config = make_config(runpod_endpoint_base=fake_runpod.base, db_path=str(db_path),
                             s3_endpoint_url=moto_endpoint,
                             **{"create_rate_limit_per_minute": CREATES, "inputs_rate_limit_per_minute": UPLOADS,
                                **overrides})
        transport = HttpxTransport()
        gateway = HttpRunPodGateway(transport, fake_runpod.base, RUNPOD_KEY, timeout_s=5)
        clock = [START]
        extra = {} if rate_limits is None else {"rate_limits": rate_limits}
        app = create_app(config, SqliteDatabase(db_path), S3ResultStore(_store_client, BUCKET), gateway,
                         log_sink=log_lines.sink, clock=lambda: clock[0], **extra)
        harness = Harness(app, app.db, s3, fake_runpod, clock)
        made.append((harness, transport))
        return harness

    yield make
    for harness, transport in made:
        harness.run(transport.aclose())
        harness.loop.close()
        harness.db.close()


def _create(svc: Harness, token: str | None = API_TOKEN, key: str | None = None,
            prompt: str = "a lighthouse") -> tuple[int, Any, dict[str, str]]:
    return svc.call("POST", "/api/queue/create", {"workflow_id": "sdxl-txt2img", "inputs": {"prompt": prompt}},
                    token=token, headers={"idempotency-key": key} if key else None)


def _upload(svc: Harness, token: str | None = API_TOKEN, seed: int = 0) -> tuple[int, Any, dict[str, str]]:
    return svc.call("POST", "/api/inputs", raw=image_bytes("image/png", seed=seed), token=token,
                    headers={"content-type": "image/png"})


def _jobs(svc: Harness) -> int:
    return svc.rows("SELECT COUNT(*) AS n FROM jobs")[0]["n"]


def _inputs(svc: Harness) -> int:
    pages = svc.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="inputs/")
    return sum(page.get("KeyCount", 0) for page in pages)


def _lines(log_lines: LogCapture, event: str) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, log_lines) if line["event"] == event]


def _rate_limited(answer: tuple[int, Any, dict[str, str]], route: str, limit: int) -> dict[str, Any]:
    status, body, headers = answer
    assert status == 429, body
    error = body["error"]
    assert error["code"] == "rate_limited", error
    assert headers["retry-after"] == "60"
    for words in (route, f"{limit} requests a minute", "Retry-After (60 s)", "api.rate_limits"):
        assert words in error["message"], error["message"]
    assert "\n" not in error["message"] and "Traceback" not in error["message"]
    return error


def test_the_create_past_the_limit_is_429_with_retry_after_and_writes_no_job_nor_calls_runpod(limited, log_lines):
    svc = limited()
    for n in range(CREATES):
        status, body, _ = _create(svc, prompt=f"lighthouse {n}")
        assert status == 202, body
    _rate_limited(_create(svc, prompt="one more"), "POST /api/queue/create", CREATES)
    assert _jobs(svc) == CREATES and len(svc.fake.runs) == CREATES
    (line,) = _lines(log_lines, "job.rate_limited")
    assert (line["level"], line["reason"], line["http"]["status"]) == ("warning", "rate_limited", 429)
    assert line["data"] == {"per_minute": CREATES, "period_s": 60}  # data.token only ever says "previous"
    assert line["job_id"] is None
    assert "one more" not in json.dumps(line)


def test_a_create_is_taken_again_once_the_minute_has_passed(limited):
    svc = limited()
    for _ in range(CREATES):
        assert _create(svc)[0] == 202
    svc.clock[0] = START + 59.9
    assert _create(svc)[0] == 429
    svc.clock[0] = START + 60
    for _ in range(CREATES):
        assert _create(svc)[0] == 202
    assert _create(svc)[0] == 429
    assert _jobs(svc) == 2 * CREATES


def test_an_upload_past_the_limit_is_429_and_stores_nothing_and_creates_keep_their_own_budget(limited, log_lines):
    svc = limited()
    before = _inputs(svc)  # the bucket is the session's: other tests' uploads are in it
    for seed in range(UPLOADS):
        status, body, _ = _upload(svc, seed=seed)
        assert status == 201, body
    _rate_limited(_upload(svc, seed=9), "POST /api/inputs", UPLOADS)
    assert _inputs(svc) == before + UPLOADS
    (line,) = [line for line in _lines(log_lines, "input.refused") if line["reason"] == "rate_limited"]
    assert (line["level"], line["http"]["status"]) == ("warning", 429)
    assert line["data"] == {"per_minute": UPLOADS, "period_s": 60}
    assert _create(svc)[0] == 202  # the uploads' limit is not the creates'
    svc.clock[0] = START + 60
    assert _upload(svc, seed=10)[0] == 201 and _inputs(svc) == before + UPLOADS + 1


def test_anonymous_requests_are_401_and_use_none_of_the_budget(limited):
    svc = limited()
    for token in (None, "wrong-token-0123456789abcdef") * 5:
        assert _create(svc, token=token)[0] == 401
        assert _upload(svc, token=token)[0] == 401
    assert [_create(svc)[0] for _ in range(CREATES)] == [202] * CREATES
    assert [_upload(svc, seed=n)[0] for n in range(UPLOADS)] == [201] * UPLOADS
    assert _create(svc)[0] == 429 and _upload(svc)[0] == 429


def test_during_a_token_rotation_the_previous_and_the_current_token_count_apart(limited, log_lines):
    """The two tokens are two clients' deployments while they move over: one stuck in a loop must not starve the
    other. The line says which token, never its value."""
    svc = limited(api_token_previous=PREVIOUS_TOKEN)
    assert [_create(svc)[0] for _ in range(CREATES)] == [202] * CREATES
    assert _create(svc)[0] == 429
    assert [_create(svc, token=PREVIOUS_TOKEN)[0] for _ in range(CREATES)] == [202] * CREATES
    _rate_limited(_create(svc, token=PREVIOUS_TOKEN), "POST /api/queue/create", CREATES)
    assert [line["data"].get("token") for line in _lines(log_lines, "job.rate_limited")] == [None, "previous"]
    assert not any(PREVIOUS_TOKEN in line or API_TOKEN in line for line in log_lines)


def test_an_idempotency_key_retry_of_a_taken_create_is_replayed_over_the_limit_and_a_new_create_is_not(limited):
    """A client whose create's answer was lost retries with its key: it gets its job, which costs nothing more. Only
    a create that would make a new job is refused."""
    svc = limited()
    status, first, _ = _create(svc, key="order-17")
    assert status == 202
    for n in range(CREATES - 1):
        assert _create(svc, prompt=f"other {n}")[0] == 202
    status, again, headers = _create(svc, key="order-17")
    assert status == 202, again
    assert again["job_id"] == first["job_id"] and headers["idempotent-replayed"] == "true"
    assert _create(svc, key="order-18")[0] == 429  # a new key: a new job
    assert _create(svc, key="order-17", prompt="another body")[0] == 429  # the key, another body: no replay
    assert _jobs(svc) == CREATES and len(svc.fake.runs) == CREATES


def test_a_counter_that_fails_lets_the_request_through_and_its_line_says_so(limited, log_lines):
    """A rate limit guards against a runaway client; its counter failing (the Worker's binding throwing) must not
    take the API down with it."""

    class Broken:
        async def limit(self, key: str) -> bool:
            raise RuntimeError("rate limit binding unavailable")

    svc = limited(rate_limits={"create": Broken()})
    assert [_create(svc)[0] for _ in range(CREATES + 2)] == [202] * (CREATES + 2)
    submitted = _lines(log_lines, "job.submitted")
    assert len(submitted) == CREATES + 2
    assert submitted[0]["data"]["rate_limit_error"] == {"type": "RuntimeError",
                                                        "message": "rate limit binding unavailable"}


@pytest.mark.parametrize("value", [0, -1, 100_001, 10**30, True, "600", 1.5])
def test_the_service_config_refuses_a_limit_that_is_no_count_a_minute_in_range(value):
    for key in ("create_rate_limit_per_minute", "inputs_rate_limit_per_minute"):
        with pytest.raises(ConfigError) as refused:
            make_config(**{key: value})
        message = str(refused.value)
        assert key in message and "\n" not in message, message
        assert "integer" in message or "1..100000" in message, message


def test_the_service_config_takes_a_limit_in_range_and_none_is_no_limit():
    config = make_config(create_rate_limit_per_minute=1, inputs_rate_limit_per_minute=100_000)
    assert (config.create_rate_limit_per_minute, config.inputs_rate_limit_per_minute) == (1, 100_000)
    assert ServiceConfig.create_rate_limit_per_minute is None and ServiceConfig.inputs_rate_limit_per_minute is None
