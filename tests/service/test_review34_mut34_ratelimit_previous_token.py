"""During an API token rotation, an upload over its rate limit with the previous token says so on its line, on both
runtimes. Such an upload is refused by the runtime's adapter before its body is read (App.count_upload), never
reaching the route that marks the previous token's other lines: without its own mark, the one client still looping
on the old token would be the one line the operator cannot tell apart while deciding to drop that token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from service_testkit import API_TOKEN, edge_in_thread
from test_review32_inputsvc_uploads import SMALL_LIMIT, LocalRuntime, image_bytes, upload
from test_review33_ratelimit_runtimes import START, UPLOADS, _cloud

PREVIOUS_TOKEN = "tok-PreviousApiToken-3c5e7a9b1d"


@pytest.fixture(params=["local", "cloud"])
def rotating(request: pytest.FixtureRequest, tmp_path: Path, log_lines: list[str]) -> Iterator[Any]:
    """A runtime whose API token is being rotated: the previous one still taken."""
    if request.param == "cloud":
        yield from _cloud(request, tmp_path, log_lines, API_TOKEN_PREVIOUS=PREVIOUS_TOKEN)
        return
    moto_endpoint, fake, s3 = (request.getfixturevalue(n) for n in ("moto_endpoint", "fake_runpod", "s3"))
    with edge_in_thread(tmp_path, moto_endpoint, fake.base, log_lines, max_input_bytes=SMALL_LIMIT,
                        inputs_rate_limit_per_minute=UPLOADS, api_token_previous=PREVIOUS_TOKEN) as server:
        for limit in server.service.app.rate_limits.values():
            limit.counter.clock = lambda: START  # one minute throughout
        running = LocalRuntime(server, s3, fake, log_lines)
        yield running
        running.close()


def test_an_upload_over_its_limit_with_the_previous_token_says_previous_on_its_line(rotating):
    answers = [upload(rotating, image_bytes("image/png", seed=n), "image/png", token=PREVIOUS_TOKEN).status
               for n in range(UPLOADS + 1)]
    assert answers == [201] * UPLOADS + [429]
    assert upload(rotating, image_bytes("image/png", seed=9), "image/png").status == 201  # the current: its own count
    lines = rotating.lines()
    (refused,) = [line for line in lines if line["event"] == "input.refused"]
    assert refused["reason"] == "rate_limited" and refused["http"]["status"] == 429, refused
    assert refused["data"].get("token") == "previous", refused
    stored = [line["data"].get("token") for line in lines if line["event"] == "input.stored"]
    assert stored == ["previous"] * UPLOADS + [None]
    said = json.dumps(lines)
    assert PREVIOUS_TOKEN not in said and API_TOKEN not in said
