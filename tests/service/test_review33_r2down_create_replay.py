"""A create retried with its Idempotency-Key while the input image store cannot be asked (an R2 outage) is answered
the job the first create made, as any replay: that job's image was checked when it was taken, and the client
learns its job id instead of a 503 for a job that exists. A create that made no job still gets the 503."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from PIL import Image
from service_testkit import Harness
from test_review32_inputmut_expired_image_replay import _create, svc  # noqa: F401

from service.ports import StoreUnavailable


def test_a_create_retried_during_a_store_outage_is_answered_its_job_and_a_new_one_a_503(
        svc: Harness, log_lines: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    out = io.BytesIO()
    Image.new("RGB", (16, 16), "teal").save(out, "PNG")
    status, upload, _ = svc.call("POST", "/api/inputs", raw=out.getvalue(), headers={"content-type": "image/png"})
    assert status == 201, upload
    status, first, _ = _create(svc, upload["key"], "a lighthouse", "k-outage")
    assert status == 202, first

    async def unreachable(key: str) -> None:
        raise StoreUnavailable("connection refused")

    monkeypatch.setattr(svc.app.store, "head", unreachable)
    before = len(log_lines)
    status, again, headers = _create(svc, upload["key"], "a lighthouse", "k-outage")
    assert status == 202 and again["job_id"] == first["job_id"], again
    assert headers["idempotent-replayed"] == "true" and len(svc.fake.runs) == 1
    assert not any(json.loads(line)["event"] == "job.create_failed" for line in log_lines[before:])  # nothing failed

    status, other, headers = _create(svc, upload["key"], "a lighthouse", "k-another")
    assert status == 503 and other["error"]["code"] == "store_unavailable", other
    assert "retry later" in other["error"]["message"] and len(svc.fake.runs) == 1
    failed = [json.loads(line) for line in log_lines[before:] if json.loads(line)["event"] == "job.create_failed"]
    assert len(failed) == 1 and failed[0]["level"] == "error", failed
