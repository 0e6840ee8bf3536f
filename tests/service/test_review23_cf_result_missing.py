"""On the Cloudflare path too, a result its job recorded that R2 no longer holds is a 404 `result_missing`
naming the job (and a `result.missing` line), while a key no job recorded stays a plain 404 `not_found`.

The route is shared with the local server (service/routes.py); this holds the Worker entry's own way there:
the D1 binding's read of the job on the 404 path, and R2's `get`/`head` answering null for the object."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from service_testkit import API_TOKEN
from test_service_cloudflare_entry import JsRequest, _entry, _webhook, _worker_with_job


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=True)


def test_a_recorded_result_r2_lost_is_result_missing_and_an_unrecorded_key_not_found(entry, tmp_path, fake_runpod,
                                                                                     capsys, log_lines):
    worker, env, job_id, key = _worker_with_job(entry, tmp_path, fake_runpod)
    rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
    hook = _webhook(worker, job_id, {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                                     "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}]}})
    assert json.loads(hook.body)["status"] == "completed"

    def call(method: str, path: str) -> Any:
        return asyncio.run(worker.fetch(JsRequest(method, "https://api.example" + path, b"",
                                                  {"authorization": f"Bearer {API_TOKEN}"})))

    assert call("GET", f"/api/result/{key}").status == 200
    (env.RESULTS.root / key).unlink()  # gone from the bucket: deleted in the dashboard, or by a lifecycle rule
    got, head = call("GET", f"/api/result/{key}"), call("HEAD", f"/api/result/{key}")
    unrecorded = call("GET", f"/api/result/results/{job_id}/7.png")
    assert (got.status, head.status, unrecorded.status) == (404, 404, 404)
    error = json.loads(got.body)["error"]
    assert error["code"] == "result_missing", error
    assert key in error["message"] and f"job {job_id} recorded it" in error["message"], error
    assert "run the job again" in error["message"], error
    assert json.loads(unrecorded.body)["error"]["code"] == "not_found"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    missing = [line for line in lines if line["event"] == "result.missing"]
    assert len(missing) == 2 and {line["job_id"] for line in missing} == {job_id}, missing  # the GET and the HEAD
    assert all(line["data"]["key"] == key for line in missing), missing
    log_lines.extend(json.dumps(line) for line in lines)  # validated against the schema at teardown
