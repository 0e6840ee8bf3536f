"""What the API's rate limits do when their counter misbehaves (review 33, rlsec). On the Worker's entry over the
stand-ins of its bindings: a Workers Rate Limiting binding that never answers holds no request past a bound, and one
whose `success` is neither true nor false (a JS null reaches Python as None) neither refuses every request as over
its limit nor lets them through unsaid; each request's one line says what the counter did. In process (the local
stack's counter): a clock set back gives no token a new minute's budget, and a clock that ran ahead and was fixed
does not keep the limit shut."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_review32_inputsvc_uploads import CloudRuntime, image_bytes, upload
from test_review33_ratelimit_routes import CREATES as CORE_CREATES
from test_review33_ratelimit_routes import START, _create, limited
from test_review33_ratelimit_runtimes import CREATES, UPLOADS, RateLimitBinding, _cloud, create

__all__ = ["limited"]  # the core App's fixture, with its rate limits counted in process

BOUND_S = 10  # how long a test lets the Worker take: far past the count's own bound


class AnsweringBinding(RateLimitBinding):
    """A binding that counts as Cloudflare's does, but answers `success` with `answer` (None: a JS null), or, with
    `hangs`, never answers at all (a promise that never settles)."""

    def __init__(self, per_minute: int, answer: Any = True, hangs: bool = False) -> None:
        super().__init__(per_minute)
        self.answer, self.hangs = answer, hangs

    async def limit(self, options: Any) -> Any:
        counted = await super().limit(options)
        if self.hangs:
            await asyncio.Event().wait()
        return type(counted)(success=self.answer) if self.answer is not True else counted


@pytest.fixture
def cloud(request: pytest.FixtureRequest, tmp_path: Path, log_lines: list[str]) -> Iterator[CloudRuntime]:
    """The Worker's entry whose every request must be answered within BOUND_S."""
    for running in _cloud(request, tmp_path, log_lines):
        running.worker.fetch = _bounded(running.worker.fetch)
        yield running


def _bounded(fetch: Any) -> Any:
    async def bounded(js_request: Any) -> Any:
        return await asyncio.wait_for(fetch(js_request), BOUND_S)

    return bounded


def _counter_errors(cloud: CloudRuntime, events: tuple[str, ...]) -> list[str]:
    lines = [line for line in cloud.lines() if line.get("http") and line["event"] in events]
    return [(line.get("data") or {}).get("rate_limit_error", {}).get("message", "<none>") for line in lines]


@pytest.mark.parametrize("answer", [None, 0, "false", "true"])
def test_a_binding_answering_neither_true_nor_false_lets_requests_through_and_each_line_says_what_it_answered(
        cloud, answer):
    """Read as bool(), a `success: null` (or 0) refused every create and upload of the stack 429 as over a limit
    nobody had reached, and a string let them all through with nothing said."""
    cloud.env.RATE_LIMIT_CREATE = AnsweringBinding(CREATES, answer)
    cloud.env.RATE_LIMIT_INPUTS = AnsweringBinding(UPLOADS, answer)
    cloud.entry.Default._app = cloud.entry.build_app(cloud.env, fetch=cloud.fetch)
    assert [create(cloud, f"p{n}").status for n in range(CREATES + 1)] == [202] * (CREATES + 1)
    assert [upload(cloud, image_bytes("image/png", seed=n), "image/png").status
            for n in range(UPLOADS + 1)] == [201] * (UPLOADS + 1)
    said = _counter_errors(cloud, ("job.submitted", "input.stored"))
    assert len(said) == CREATES + UPLOADS + 2
    assert all(f"answered {answer!r}, not true or false" in message for message in said), said


def test_a_binding_that_never_answers_holds_no_create_nor_upload_and_each_line_says_so_once(cloud):
    """A hung binding held every create and upload until the runtime gave up on the request: the limit, a guard
    against a runaway client, took the API down with it. Now each waits a bounded time, goes through, and its one
    line says the count did not come."""
    cloud.env.RATE_LIMIT_CREATE = AnsweringBinding(CREATES, hangs=True)
    cloud.env.RATE_LIMIT_INPUTS = AnsweringBinding(UPLOADS, hangs=True)
    cloud.entry.Default._app = cloud.entry.build_app(cloud.env, fetch=cloud.fetch)
    started = time.monotonic()
    assert create(cloud).status == 202
    assert time.monotonic() - started < 3
    started = time.monotonic()
    assert upload(cloud, image_bytes("image/png"), "image/png").status == 201
    assert time.monotonic() - started < 5  # counted before its body is read, and again by the core: each bounded
    lines = [line for line in cloud.lines() if line.get("http")]
    assert [line["event"] for line in lines] == ["job.submitted", "input.stored"]
    for line, route in zip(lines, ("POST /api/queue/create", "POST /api/inputs"), strict=True):
        assert line["data"]["rate_limit_error"] == {
            "type": "CounterFailed", "message": f"the {route} rate limit did not answer within 1 s"}, line
        assert json.dumps(line).count("rate_limit_error") == 1


def test_another_binding_under_a_rate_limit_name_is_said_once_not_on_every_line(request, tmp_path, log_lines):
    """A plain-text setting (or any binding without `limit()`) under RATE_LIMIT_CREATE was taken for the counter: every
    create's line carried an AttributeError, and no line said the route had no limit. Now it is as if unbound: one
    service.rate_limit_unbound line, and the other route keeps its limit."""
    for cloud in _cloud(request, tmp_path, log_lines):
        cloud.env.RATE_LIMIT_CREATE = str(CREATES)
        cloud.entry.Default._app = cloud.entry.build_app(cloud.env, fetch=cloud.fetch)
        assert [create(cloud, f"p{n}").status for n in range(CREATES + 1)] == [202] * (CREATES + 1)
        assert [upload(cloud, image_bytes("image/png", seed=n), "image/png").status
                for n in range(UPLOADS + 1)] == [201] * UPLOADS + [429]
        (line,) = [line for line in cloud.lines() if line["event"] == "service.rate_limit_unbound"]
        assert line["data"] == {"bindings": ["RATE_LIMIT_CREATE"]} and "not of type ratelimit" in line["message"]
        assert _counter_errors(cloud, ("job.submitted",)) == ["<none>"] * (CREATES + 1)


def test_a_clock_set_back_gives_no_token_a_new_minutes_budget(limited):
    """The local stack counts per minute of its clock. Set back across a minute's start (an NTP step), it restarted
    the count: a client in a loop got its budget twice within a real minute."""
    svc = limited()
    svc.clock[0] = START + 61  # the second minute
    assert [_create(svc, prompt=f"p{n}")[0] for n in range(CORE_CREATES)] == [202] * CORE_CREATES
    svc.clock[0] = START + 59.5  # set back into the first minute
    assert _create(svc, prompt="again")[0] == 429
    svc.clock[0] = START + 119  # the second minute again, as the clock catches up
    assert _create(svc, prompt="still")[0] == 429
    svc.clock[0] = START + 120  # the third minute: a new budget
    assert _create(svc, prompt="next minute")[0] == 202


def test_a_clock_that_ran_ahead_and_was_fixed_keeps_the_count_and_does_not_shut_the_limit(limited):
    """A clock that ran an hour ahead and was set right: the count goes on (no new budget), and the next minute of
    the fixed clock starts one (the limit is not shut until the clock reaches the hour it had run to)."""
    svc = limited()
    svc.clock[0] = START + 3600
    assert [_create(svc, prompt=f"p{n}")[0] for n in range(CORE_CREATES)] == [202] * CORE_CREATES
    svc.clock[0] = START + 1
    assert _create(svc, prompt="set right")[0] == 429
    svc.clock[0] = START + 60
    assert _create(svc, prompt="next minute")[0] == 202
