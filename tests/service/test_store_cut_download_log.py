"""A result download the store cuts mid-body is logged as one error line that names its job: not a line with
`job_id: null` beside uvicorn's "Exception in ASGI application" (`service.server_log`), which LOG_EVENTS.md reads
as a crash. Real uvicorn subprocess, real botocore over HTTP against a store that breaks off (breaking_s3.py)."""

from __future__ import annotations

import json

import httpx
import pytest
from breaking_s3 import BrokenObject, breaking_s3
from service_testkit import API_TOKEN, LocalServer, check_log_lines

IMAGE = b"\x89PNG" + bytes(range(256)) * 1000  # 256 KB: several of the store's 64 KB chunks
JOB = "e" * 32


def test_a_cut_download_is_one_error_line_and_it_names_the_job(tmp_path, moto_endpoint, fake_runpod):
    key = f"results/{JOB}/0.png"
    with breaking_s3({key: BrokenObject(IMAGE, "image/png", cut_after=100_000)}) as endpoint:
        server = LocalServer(tmp_path, moto_endpoint, fake_runpod.base, s3_endpoint_url=endpoint).start()
        try:
            with httpx.Client(timeout=30) as client, client.stream(
                    "GET", f"{server.url}/api/result/{key}", headers={"authorization": f"Bearer {API_TOKEN}"}) as reply:
                assert reply.status_code == 200
                with pytest.raises(httpx.RemoteProtocolError):
                    for _ in reply.iter_raw():
                        pass
        finally:
            server.stop()
    lines = server.log_lines()
    check_log_lines(lines)
    errors = [line for line in map(json.loads, lines) if line["level"] == "error"]
    assert [(line["event"], line.get("job_id")) for line in errors] == [("result.refused", JOB)], errors
