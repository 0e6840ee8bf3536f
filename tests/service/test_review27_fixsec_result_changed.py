"""A result whose object in the store is no longer the size its job recorded is not served as the job's result.

GET /api/result served whatever object was under the key: one overwritten in the bucket (by anything holding the
bucket's credentials, or, locally, any web page before the store refused browsers) was handed out as the job's
result. The recorded size is now compared with the stored one (the store's size, never a hash of the body, which
is streamed): a difference is a 409 `result_changed` and one `result.changed` line, on the local server and the
Worker entry alike (the route is shared; each runtime has its own store adapter and database)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from service_testkit import API_TOKEN, BUCKET
from test_service_cloudflare_entry import JsRequest, _entry, _webhook, _worker_with_job

REWRITTEN = b"<svg xmlns='http://www.w3.org/2000/svg'/> not the job's image"


def test_a_result_rewritten_in_the_local_store_is_409_result_changed_not_served(svc, log_lines):
    job_id = svc.create()["job_id"]
    image = svc.put_result(job_id, "0.png")
    status, body, _ = svc.deliver(job_id, svc.completed(job_id, [image]))
    assert status == 200 and body["status"] == "completed", body
    status, content, _ = svc.call("GET", f"/api/result/{image['key']}")
    assert status == 200 and content == b"\x89PNG fake image bytes"

    svc.s3.put_object(Bucket=BUCKET, Key=image["key"], Body=REWRITTEN, ContentType="image/png")
    etag = svc.s3.head_object(Bucket=BUCKET, Key=image["key"])["ETag"]
    del log_lines[:]

    for method, headers in (("GET", {}), ("HEAD", {}), ("GET", {"if-none-match": etag})):
        status, body, _ = svc.call(method, f"/api/result/{image['key']}", headers=headers)
        assert status == 409, (method, headers, body)
        if method == "GET":
            assert body["error"]["code"] == "result_changed", body
            message = body["error"]["message"]
            assert image["key"] in message and str(image["bytes"]) in message and str(len(REWRITTEN)) in message
    changed = [json.loads(raw) for raw in log_lines if json.loads(raw)["event"] == "result.changed"]
    assert len(changed) == 3, log_lines
    assert changed[0]["level"] == "error" and changed[0]["job_id"] == job_id
    assert changed[0]["data"] == {"key": image["key"], "recorded_bytes": image["bytes"],
                                  "stored_bytes": len(REWRITTEN)}


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=True)


def test_a_result_rewritten_in_r2_is_409_result_changed_on_the_worker_too(entry, tmp_path, fake_runpod, capsys,
                                                                          log_lines):
    worker, env, job_id, key = _worker_with_job(entry, tmp_path, fake_runpod)
    rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
    hook = _webhook(worker, job_id, {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                                     "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}]}})
    assert json.loads(hook.body)["status"] == "completed"

    def call(method: str) -> Any:
        return asyncio.run(worker.fetch(JsRequest(method, f"https://api.example/api/result/{key}", b"",
                                                  {"authorization": f"Bearer {API_TOKEN}"})))

    assert call("GET").status == 200
    (env.RESULTS.root / key).write_bytes(REWRITTEN)  # rewritten in the bucket
    got, head = call("GET"), call("HEAD")
    assert (got.status, head.status) == (409, 409)
    error = json.loads(got.body)["error"]
    assert error["code"] == "result_changed" and key in error["message"], error
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    changed = [line for line in lines if line["event"] == "result.changed"]
    assert len(changed) == 2 and changed[0]["data"]["stored_bytes"] == len(REWRITTEN), changed
    log_lines.extend(json.dumps(line) for line in lines)  # validated against the schema at teardown
