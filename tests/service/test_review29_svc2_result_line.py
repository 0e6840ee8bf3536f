"""A result download's line (`http.request` for GET or HEAD /api/result/<key>) names the job whose result it is, as a
status read's does: its job_id, trace_id, workflow_version and worker_image_tag, so a filter on the job's trace_id
finds its downloads. A key whose job row is gone (pruned) names none: a job_id without its trace would be a job line
the checklist's trace line counts against the stack. The core, and the Cloudflare Worker entry over its stand-ins."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from service_testkit import API_TOKEN, WEBHOOK_SECRET
from test_service_cloudflare_entry import Ctx, Fetch, JsRequest, entry, make_env  # noqa: F401 (entry is a fixture)

from service.signing import webhook_signature

CATALOGUE = Path(__file__).resolve().parents[2] / "docs/LOG_EVENTS.md"
CONTEXT = ("job_id", "trace_id", "workflow_version", "worker_image_tag")


def _downloads(lines) -> list[dict]:
    return [line for line in map(json.loads, lines)
            if line["event"] == "http.request" and line["http"]["path"].startswith("/api/result/")]


def test_a_result_downloads_line_names_its_job_and_trace(svc, log_lines):
    created = svc.create()
    job_id = created["job_id"]
    image = svc.put_result(job_id)
    assert svc.deliver(job_id, svc.completed(job_id, [image]))[0] == 200
    _, status, _ = svc.call("GET", f"/api/status/{job_id}")
    job = (job_id, created["trace_id"], status["workflow_version"], status["worker_image_tag"])
    log_lines.clear()

    got = svc.call("GET", f"/api/result/{image['key']}")
    assert got[0] == 200
    assert svc.call("HEAD", f"/api/result/{image['key']}")[0] == 200
    assert svc.call("GET", f"/api/result/{image['key']}", headers={"if-none-match": got[2]["etag"]})[0] == 304
    signed = status["results"][0]["url"].split("?", 1)[1]
    assert svc.call("GET", f"/api/result/{image['key']}", token=None, query=signed)[0] == 200
    lines = _downloads(log_lines)
    assert [line["http"]["status"] for line in lines] == [200, 200, 304, 200]
    assert all(tuple(line[k] for k in CONTEXT) == job for line in lines), lines
    assert job[1] and job[2] == "sdxl-txt2img@1.0.0" and job[3] == "local/worker@sha256:" + "b" * 64


def test_a_pruned_jobs_result_names_no_job(svc, log_lines):
    job_id = svc.create()["job_id"]
    image = svc.put_result(job_id)
    svc.deliver(job_id, svc.completed(job_id, [image]))
    svc.run(svc.db.execute("DELETE FROM webhook_deliveries WHERE job_id = ?", (job_id,)))  # as goldgate prune does
    svc.run(svc.db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)))
    log_lines.clear()
    assert svc.call("GET", f"/api/result/{image['key']}")[0] == 200
    (line,) = _downloads(log_lines)
    assert (line["job_id"], line["trace_id"]) == (None, None)


def test_the_worker_entrys_download_line_names_the_job_too(entry, tmp_path, fake_runpod, capsys, log_lines):  # noqa: F811
    env = make_env(tmp_path, fake_runpod.base)
    worker = entry.Default(Ctx(), env)
    entry.Default._app = entry.build_app(env, fetch=Fetch())
    auth = {"authorization": f"Bearer {API_TOKEN}"}

    async def scenario() -> dict:
        created = json.loads((await worker.fetch(JsRequest("POST", "https://api.example/api/queue/create", json.dumps(
            {"workflow_id": "flux-schnell", "inputs": {"prompt": "p"}}).encode(), auth))).body)
        job_id = created["job_id"]
        rid = env.DB.conn.execute("SELECT runpod_job_id FROM jobs").fetchone()[0]
        key = f"results/{job_id}/0.png"
        env.RESULTS.put(key, b"\x89PNG data", "image/png")
        await worker.fetch(JsRequest(
            "POST", f"https://api.example/api/runpod/webhook?job={job_id}&sig={webhook_signature(WEBHOOK_SECRET, job_id)}",
            json.dumps({"id": rid, "status": "COMPLETED", "delayTime": 3, "executionTime": 1001,
                        "output": {"images": [{"key": key, "content_type": "image/png", "bytes": 9},
                                              ], "worker_image_tag": "cf/worker@sha256:" + "d" * 64}}).encode()))
        result = await worker.fetch(JsRequest("GET", f"https://api.example/api/result/{key}", b"", auth))
        assert result.status == 200 and await result.body.read_all() == b"\x89PNG data"
        return created

    created = asyncio.run(scenario())
    version = env.DB.conn.execute("SELECT workflow_version FROM jobs").fetchone()[0]
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    log_lines.extend(lines)  # validated against the schema and scanned for secrets at teardown
    (line,) = _downloads(lines)
    assert tuple(line[k] for k in CONTEXT) == (created["job_id"], created["trace_id"], version,
                                               "cf/worker@sha256:" + "d" * 64)
    assert version.startswith("flux-schnell@")


def test_the_catalogue_says_a_download_names_its_job_while_its_row_is_there():
    text = CATALOGUE.read_text(encoding="utf-8")
    listed = re.search(r"do not carry the job's context.*?\n\n", text, re.DOTALL).group(0)
    (download,) = [item for item in listed.split("\n- ") if "/api/result/<key>" in item]
    assert "names its job" in download and "pruned" in download, download
