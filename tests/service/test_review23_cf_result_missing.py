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
from service_testkit import API_TOKEN, WEBHOOK_SECRET
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, _entry, make_env

from service.signing import webhook_signature


@pytest.fixture
def entry(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    yield from _entry(monkeypatch, with_jsnull=True)


def test_a_recorded_result_r2_lost_is_result_missing_and_an_unrecorded_key_not_found(entry, tmp_path, fake_runpod,
                                                                                     capsys, log_lines):
    env = make_env(tmp_path, fake_runpod.base)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    worker = entry.Default(Ctx(), env)
    auth = {"authorization": f"Bearer {API_TOKEN}"}

    async def call(method: str, path: str, body: Any = None) -> Any:
        raw = json.dumps(body).encode() if body is not None else b""
        return await worker.fetch(JsRequest(method, "https://api.example" + path, raw, auth))

    async def scenario() -> tuple[str, str, list[Any]]:
        created = await call("POST", "/api/queue/create", {"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}})
        job_id = json.loads(created.body)["job_id"]
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        key = f"results/{job_id}/0.png"
        env.RESULTS.put(key, b"\x89PNG data", "image/png")
        hook = await call("POST", f"/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
                          {"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                           "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9}]}})
        assert json.loads(hook.body)["status"] == "completed"
        assert (await call("GET", f"/api/result/{key}")).status == 200
        (env.RESULTS.root / key).unlink()  # gone from the bucket: deleted in the dashboard, or by a lifecycle rule
        answers = [await call("GET", f"/api/result/{key}"), await call("HEAD", f"/api/result/{key}"),
                   await call("GET", f"/api/result/results/{job_id}/7.png")]
        return job_id, key, answers

    job_id, key, (got, head, unrecorded) = asyncio.run(scenario())
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
